"""The process's one watch on the upstream: ``_db_updates``, continuous, as the upstream's admin.

It says which databases change and nothing more; what that means for the feeds waiting on them
is its listener's (:class:`gateway.replication.changes_hub.ChangesHub`). It reconnects after
every failure, and tells the listener when it is lost (nothing it vouched for holds any more) and
when it is back (anything learnt before may have missed events). An upstream without
``_db_updates`` (pouchdb-server) ends it for good: live feeds are then forwarded one by one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Protocol

import aiohttp

from gateway.upstream.backend import Backend
from gateway.upstream.member_auth import admin_headers

log = logging.getLogger(__name__)

# CouchDB sends _db_updates' response headers with its first line, one or two heartbeats after
# the request when nothing changes (measured on 3.5.2: 5 or 10 s at 5,000 ms, 1 or 2 s at
# 1,000): a short heartbeat makes a (re)connected watch known, and every waiting feed
# re-checked, within two seconds even when idle, for one newline a second.
WATCH_HEARTBEAT_MS = 1_000
RECONNECT_S = (0.2, 1.0, 5.0)


class WatchListener(Protocol):
    def changed(self, db: str) -> None:
        """``db`` changed."""

    def reset(self) -> None:
        """The watch is (back) on: anything learnt before it may have missed events."""

    def lost(self) -> None:
        """The watch is gone until it reconnects: nothing it vouched for holds."""


class DbUpdatesWatch:
    def __init__(self, backend: Backend, listener: WatchListener) -> None:
        self._backend = backend
        self._listener = listener
        self.watching = False
        self.supported = True

    async def run(self) -> None:
        """Follow ``_db_updates`` for the life of the process, reconnecting after failures."""
        failures = 0
        while self.supported:
            try:
                await self._follow()
                failures = 0
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("database updates watch lost: %s", type(exc).__name__)
                failures += 1
            finally:
                self.watching = False
                self._listener.lost()
            if self.supported:
                await asyncio.sleep(RECONNECT_S[min(failures, len(RECONNECT_S) - 1)])

    async def _follow(self) -> None:
        backend = self._backend
        url = backend.url.with_path(backend.url.path.rstrip("/") + "/_db_updates").with_query(
            feed="continuous", since="now", heartbeat=str(WATCH_HEARTBEAT_MS)
        )
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30)
        headers = {**admin_headers(backend.settings), "Accept": "application/json"}
        async with backend.http.get(url, headers=headers, timeout=timeout) as resp:
            if resp.status in (400, 404, 405, 501):
                log.info("the upstream has no _db_updates: live feeds are forwarded one by one")
                self.supported = False
                return
            if resp.status != 200:
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
            self.watching = True
            self._listener.reset()
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                name = event.get("db_name") if isinstance(event, dict) else None
                if isinstance(name, str):
                    self._listener.changed(name)
