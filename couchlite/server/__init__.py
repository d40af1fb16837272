"""couchlite's HTTP face: CouchDB's API over the engine, as an aiohttp application.

Routing in ``app`` (on the raw path, as CouchDB does), documents and attachments in ``docs``,
``_changes`` and ``_db_updates`` in ``changes``, multipart bodies in ``multipart``, query and body
parameters in ``params``, the per-application state in ``state``.
"""

from __future__ import annotations

from .app import create_store_app

__all__ = ["create_store_app"]
