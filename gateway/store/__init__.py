"""The embedded store: a CouchDB-compatible database engine on SQLite, served over HTTP.

couchgate runs it in-process when no CouchDB URL is configured and talks to it on loopback exactly
as to CouchDB, so the proxy never knows which one it has. Modules, from the bottom up:
``revtree`` (pure revision-tree rules), ``storage`` (the SQLite file, its threads, the
cross-process wake-up), ``compaction``, ``documents`` (validating writes), ``attachments``,
``engine`` (writes), ``reads``, ``changes`` (also ``_db_updates``), ``multipart``, the aiohttp
layer in ``http``, ``http_docs`` and ``http_changes``, and ``cli`` (``couchgate store``).
"""

from __future__ import annotations

from .http import create_store_app

__all__ = ["create_store_app"]
