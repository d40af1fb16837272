"""couchlite: a CouchDB-compatible database engine on SQLite, and its HTTP server.

couchgate runs it as its embedded upstream when no CouchDB URL is configured (over loopback HTTP,
exactly as a real CouchDB, so the proxy never knows which), and couchgate-sync opens the engine
in-process as its local database. It imports neither of them. Modules, from the bottom up:
``errors`` (CouchDB's error tree and the JSON error body), ``revtree`` (pure revision-tree rules),
``storage`` (the SQLite file, its threads, the cross-process wake-up), ``compaction``,
``documents`` (validating writes), ``attachments``, ``engine`` (writes), ``reads``, ``changes``
(also ``_db_updates``), ``selector``; ``server/`` is the aiohttp face (``app``, ``docs``,
``changes``, ``multipart``, ``params``, ``state``). ``python -m couchlite`` serves a data directory.
"""
