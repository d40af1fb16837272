"""couchgate-sync: a folder of notes kept in sync through couchgate, end-to-end encrypted.

Modules, from the bottom up: ``ignore`` (which paths are synced), ``folder`` (scanning and atomic
writes), ``notes`` (a file as a sealed ``ep1`` document: the note format), ``chunks`` (large
files), ``versions`` (kept old and deleted contents), ``merge`` (three-way text merges and
conflict-copy names), ``state`` (what the folder looked like at the last sync, in SQLite),
``localdb`` (the device's CouchDB-compatible store: the embedded store's engine, in-process),
``remote`` (the server's database over HTTP), ``replicate`` (the CouchDB replication protocol
between the two), ``resolve`` (conflicts), ``sync`` (one sync cycle), ``live`` (``run``),
``history`` (history, restore, status), ``config``/``credentials``/``join`` (signing a device
in) and ``cli``.
"""
