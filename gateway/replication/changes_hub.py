"""Live ``_changes`` feeds held by couchgate itself: an idle feed costs its client's socket and a
few kilobytes here, and no upstream connection.

One upstream watch per process (:mod:`.changes_watch`) says which databases change. A waiting
long poll or continuous feed (:mod:`.changes_feed`) is a :class:`Waiter` on its database; when
the database changes, the waiters are woken and read what is new with an ordinary
``feed=normal`` read of ``_changes`` from their own position, and reads of one database from one
position with the same parameters are shared (:meth:`ChangesHub.read`), so a change costs one
upstream read per database, not one per feed. A long poll answers with that read's body
unchanged, so the client gets exactly what the upstream would have sent; a continuous feed writes
its rows as lines.

Nothing is missed: a waiter is registered before its first read, so a change that lands during
the read wakes it again; what is known of a database's latest position is forgotten at every
event for it and whenever the watch reconnects, and a reconnect wakes every waiter to read again
from its own position.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import hdrs
from yarl import URL

from gateway.replication.changes_watch import DbUpdatesWatch
from gateway.upstream.backend import Backend, member_name
from gateway.upstream.member_auth import member_headers

SHARED_READ_LIMIT = 16 * 1024 * 1024
UNKNOWN: Any = object()
"""What :meth:`ChangesHub.latest` says of a database whose latest position it cannot vouch for."""


class Wake(Enum):
    """Why a waiting feed resumes."""

    WOKEN = "woken"
    """Its database changed (or the watch came back): read again."""
    STOP = "stop"
    """Its device was revoked, or the process is shutting down."""
    TICK = "tick"
    """Its timer fell due: a heartbeat or the deadline, which the feed tells apart."""
    HEARTBEAT = "heartbeat"
    DEADLINE = "deadline"


@dataclass(frozen=True, slots=True)
class Read:
    """One ``feed=normal`` read, whole: shared by every waiter at the same position."""

    status: int
    headers: dict[str, str]
    body: bytes
    rows: list[Any]
    last_seq: Any
    pending: int | None


class TooLarge(Exception):
    """A read too big to share: the feed ends and the client asks again."""


@dataclass(eq=False, slots=True)
class Waiter:
    """One held feed as its database sees it: whether a change came since it last looked, and
    the future its feed waits on right now (one per wait, no task)."""

    woken: bool = False
    waiting: asyncio.Future[Wake] | None = None

    def wake(self, why: Wake = Wake.WOKEN) -> None:
        if why is Wake.WOKEN:
            self.woken = True
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(why)

    def take(self) -> bool:
        """Whether a change came since the feed last took one; only the read that follows may
        forget it (a wake that lands as a heartbeat falls due must still bring that read)."""
        woken, self.woken = self.woken, False
        return woken


class ChangesHub:
    """The process's watch on the upstream and every feed waiting on it."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._watch = DbUpdatesWatch(backend, self)
        self._waiters: defaultdict[str, set[Waiter]] = defaultdict(set)
        self._latest: dict[str, Any] = {}
        """Per database, the position of its latest change as the last read saw it, kept only
        while the watch vouches that nothing changed since."""
        self._generation: defaultdict[str, int] = defaultdict(int)
        self._reads: dict[tuple[Any, ...], asyncio.Task[Read]] = {}
        self.upstream_reads = 0

    @property
    def watching(self) -> bool:
        return self._watch.watching

    async def watch(self) -> None:
        """Follow the upstream's database updates for the life of the process."""
        await self._watch.run()

    # -- what the watch tells ---------------------------------------------------------------

    def lost(self) -> None:
        """Without a watch nothing known holds; waiters stay until it is back (then they all
        read again, from their own positions, so nothing written meanwhile is missed)."""
        self._latest.clear()

    def reset(self) -> None:
        self._latest.clear()
        self._reads.clear()
        for db in list(self._waiters):
            self.changed(db)

    def changed(self, db: str) -> None:
        self._generation[db] += 1
        self._latest.pop(db, None)
        for key in [key for key in self._reads if key[0] == db]:
            del self._reads[key]
        for waiter in self._waiters.get(db, ()):
            waiter.wake()

    # -- what a feed asks -------------------------------------------------------------------

    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    def latest(self, db: str) -> Any:
        """The position of ``db``'s latest change as the last read saw it, kept only while
        nothing says it changed since; else :data:`UNKNOWN`. Only while :attr:`watching` does
        the watch vouch for it."""
        return self._latest.get(db, UNKNOWN)

    @contextlib.asynccontextmanager
    async def waiting_on(self, db: str) -> AsyncIterator[Waiter]:
        """A waiter on ``db``, registered for as long as the feed is held."""
        waiter = Waiter()
        self._waiters[db].add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._waiters.get(db)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[db]
                    self._generation.pop(db, None)

    async def read(
        self, db: str, uid: str, app: str, since: Any, params: dict[str, str], body: bytes | None
    ) -> Read:
        """The normal read of ``db`` from ``since``, shared with every feed asking for the same
        one before the database changes again."""
        key = (db, json.dumps(since), urlencode(sorted(params.items())), body, self._generation[db])
        task = self._reads.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fetch(uid, app, since, params, body))
            self._reads[key] = task
            task.add_done_callback(functools.partial(self._forget_failed, key))
        read = await asyncio.shield(task)
        if key[-1] == self._generation[db] and read.status == 200 and read.pending == 0:
            self._latest[db] = read.last_seq
        return read

    def _forget_failed(self, key: tuple[Any, ...], task: asyncio.Task[Read]) -> None:
        failed = task.cancelled() or task.exception() is not None or task.result().status != 200
        if failed and self._reads.get(key) is task:
            del self._reads[key]

    async def _fetch(
        self, uid: str, app: str, since: Any, params: dict[str, str], body: bytes | None
    ) -> Read:
        backend = self._backend
        self.upstream_reads += 1
        query = {**params, "feed": "normal", "since": _query_value(since)}
        url = URL(str(backend.db_url(uid, app)) + "/_changes?" + urlencode(query), encoded=True)
        headers = {
            **member_headers(backend.settings, member_name(uid), int(time.time())),
            "Accept": "application/json",
        }
        if body is not None:
            headers[hdrs.CONTENT_TYPE] = "application/json"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300)
        method = "POST" if body is not None else "GET"
        async with backend.http.request(
            method, url, headers=headers, data=body, timeout=timeout
        ) as resp:
            if resp.content_length is not None and resp.content_length > SHARED_READ_LIMIT:
                raise TooLarge()
            raw = bytearray()
            async for chunk in resp.content.iter_any():
                raw += chunk
                if len(raw) > SHARED_READ_LIMIT:
                    raise TooLarge()
            kept = {
                name: value
                for name, value in resp.headers.items()
                if name.lower() in ("content-type", "cache-control", "etag")
            }
            if resp.status != 200:
                return Read(resp.status, kept, bytes(raw), [], None, None)
            answer = json.loads(raw)
            rows = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(rows, list):
                raise ValueError("a _changes answer without results")
            pending = answer.get("pending")
            if not isinstance(pending, int):
                limit = params.get("limit")
                pending = 0 if limit is None or len(rows) < int(limit) else None
            return Read(200, kept, bytes(raw), rows, answer.get("last_seq"), pending)


def _query_value(since: Any) -> str:
    return since if isinstance(since, str) else json.dumps(since)
