"""Live ``_changes`` feeds held by couchgate itself: an idle feed costs its client's socket and a
few kilobytes here, and no upstream connection.

One upstream watch per process (``_db_updates``, continuous, as the upstream's admin) says which
databases change. A waiting long poll or continuous feed is a :class:`_Waiter` on its database;
when the database changes, the waiters are woken and read what is new with an ordinary
``feed=normal`` read of ``_changes`` from their own position, and reads of one database from one
position with the same parameters are shared, so a change costs one upstream read per database,
not one per feed. A long poll answers with that read's body unchanged, so the client gets exactly
what the upstream would have sent; a continuous feed writes its rows as lines.

Nothing is missed: a waiter is registered before its first read, so a change that lands during
the read wakes it again; what is known of a database's latest position is forgotten at every
event for it and whenever the watch reconnects, and a reconnect wakes every waiter to read again
from its own position. Feeds the hub cannot serve exactly (parameters outside
:data:`PARAMETERS`, ``eventsource``, an upstream without ``_db_updates`` such as pouchdb-server)
are forwarded as before (:func:`multiplexable`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
from aiohttp import hdrs, web
from yarl import URL

from gateway.errors import UpstreamUnavailable
from gateway.replication import upstream_errors
from gateway.replication.feeds import Stop
from gateway.replication.paths import Target
from gateway.upstream.backend import Backend, db_name, member_name
from gateway.upstream.member_auth import admin_headers, member_headers

log = logging.getLogger(__name__)

FEEDS = frozenset({"longpoll", "continuous"})
# What a multiplexed feed may ask for: everything PouchDB's and CouchDB's replicators send. The
# normal read gets all of them but the feed's own shape (feed, since, heartbeat, timeout).
PARAMETERS = frozenset(
    {
        "feed",
        "since",
        "limit",
        "heartbeat",
        "timeout",
        "include_docs",
        "style",
        "conflicts",
        "attachments",
        "att_encoding_info",
        "filter",
        "doc_ids",
        "seq_interval",
    }
)
FEED_SHAPE = frozenset({"feed", "since", "heartbeat", "timeout"})
DEFAULT_TIMEOUT_MS = 60_000  # CouchDB's [chttpd] changes_timeout
DEFAULT_HEARTBEAT_MS = 60_000  # heartbeat=true
BATCH = 500  # rows per read of a continuous feed
SHARED_READ_LIMIT = 16 * 1024 * 1024
# CouchDB sends _db_updates' response headers with its first line, one or two heartbeats after
# the request when nothing changes (measured on 3.5.2: 5 or 10 s at 5,000 ms, 1 or 2 s at
# 1,000): a short heartbeat makes a (re)connected watch known, and every waiting feed
# re-checked, within two seconds even when idle, for one newline a second.
WATCH_HEARTBEAT_MS = 1_000
RECONNECT_S = (0.2, 1.0, 5.0)
POST_BODY_LIMIT = 256 * 1024


def multiplexable(target: Target, method: str, hub: ChangesHub | None) -> bool:
    """Whether this live feed can be held here rather than forwarded."""
    if hub is None or not hub.watching or target.feed not in FEEDS or method not in ("GET", "POST"):
        return False
    params = dict(parse_qsl(target.query, keep_blank_values=True))
    if not set(params) <= PARAMETERS:
        return False
    try:
        for name in ("limit", "heartbeat", "timeout"):
            if name in params and params[name] != "true":
                int(params[name])
    except ValueError:
        return False  # the upstream's own error for it
    return True


@dataclass(frozen=True, slots=True)
class _Read:
    """One ``feed=normal`` read, whole: shared by every waiter at the same position."""

    status: int
    headers: dict[str, str]
    body: bytes
    rows: list[Any]
    last_seq: Any
    pending: int | None


class _TooLarge(Exception):
    """A read too big to share: the feed ends and the client asks again."""


@dataclass(eq=False, slots=True)
class _Waiter:
    """One held feed as its database sees it: whether a change came since it last looked, and
    the future its feed waits on right now (one per wait, no task)."""

    woken: bool = False
    waiting: asyncio.Future[str] | None = None

    def wake(self, why: str = "woken") -> None:
        if why == "woken":
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
        self._waiters: defaultdict[str, set[_Waiter]] = defaultdict(set)
        self._latest: dict[str, Any] = {}
        """Per database, the position of its latest change as the last read saw it, kept only
        while the watch vouches that nothing changed since."""
        self._generation: defaultdict[str, int] = defaultdict(int)
        self._reads: dict[tuple[Any, ...], asyncio.Task[_Read]] = {}
        self.watching = False
        self.supported = True
        self.upstream_reads = 0

    # -- the watch ------------------------------------------------------------------------

    async def watch(self) -> None:
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
                self._lost()
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
            self._reset()  # anything learnt before this watch may have missed events
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                name = event.get("db_name") if isinstance(event, dict) else None
                if isinstance(name, str):
                    self._changed(name)

    def _lost(self) -> None:
        """Without a watch nothing known holds; waiters stay until it is back (then they all
        read again, from their own positions, so nothing written meanwhile is missed)."""
        self.watching = False
        self._latest.clear()

    def _reset(self) -> None:
        self._latest.clear()
        self._reads.clear()
        for db in list(self._waiters):
            self._changed(db)

    def _changed(self, db: str) -> None:
        self._generation[db] += 1
        self._latest.pop(db, None)
        for key in [key for key in self._reads if key[0] == db]:
            del self._reads[key]
        for waiter in self._waiters.get(db, ()):
            waiter.wake()

    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    # -- reads ----------------------------------------------------------------------------

    async def _read(
        self, db: str, uid: str, app: str, since: Any, params: dict[str, str], body: bytes | None
    ) -> _Read:
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

    def _forget_failed(self, key: tuple[Any, ...], task: asyncio.Task[_Read]) -> None:
        failed = task.cancelled() or task.exception() is not None or task.result().status != 200
        if failed and self._reads.get(key) is task:
            del self._reads[key]

    async def _fetch(
        self, uid: str, app: str, since: Any, params: dict[str, str], body: bytes | None
    ) -> _Read:
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
                raise _TooLarge()
            raw = bytearray()
            async for chunk in resp.content.iter_any():
                raw += chunk
                if len(raw) > SHARED_READ_LIMIT:
                    raise _TooLarge()
            kept = {
                name: value
                for name, value in resp.headers.items()
                if name.lower() in ("content-type", "cache-control", "etag")
            }
            if resp.status != 200:
                return _Read(resp.status, kept, bytes(raw), [], None, None)
            answer = json.loads(raw)
            rows = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(rows, list):
                raise ValueError("a _changes answer without results")
            pending = answer.get("pending")
            if not isinstance(pending, int):
                limit = params.get("limit")
                pending = 0 if limit is None or len(rows) < int(limit) else None
            return _Read(200, kept, bytes(raw), rows, answer.get("last_seq"), pending)

    # -- serving a feed -------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _waiting_on(self, db: str) -> AsyncIterator[_Waiter]:
        waiter = _Waiter()
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

    async def serve(
        self,
        request: web.Request,
        uid: str,
        target: Target,
        body: bytes | None,
        stop: Stop,
    ) -> web.StreamResponse:
        """Answer one long poll or continuous feed from the hub."""
        params = dict(parse_qsl(target.query, keep_blank_values=True))
        feed = _Feed(self, request, uid, target.app, params, body, stop)
        async with self._waiting_on(feed.db) as waiter:
            feed.waiter = waiter
            return await feed.answer(target.feed)


def _query_value(since: Any) -> str:
    return since if isinstance(since, str) else json.dumps(since)


def _since(raw: str | None) -> Any:
    if raw is None or raw == "":
        return 0
    if raw == "now":
        return "now"
    if raw.isdigit():
        return int(raw)
    with contextlib.suppress(ValueError):
        return json.loads(raw)  # a JSON-encoded sequence, as some clients send it
    return raw


class _Feed:
    """One client's feed while the hub holds it."""

    def __init__(
        self,
        hub: ChangesHub,
        request: web.Request,
        uid: str,
        app: str,
        params: dict[str, str],
        body: bytes | None,
        stop: Stop,
    ) -> None:
        self.hub, self.request, self.uid, self.app = hub, request, uid, app
        self.db = db_name(uid, app)
        self.body, self.stop = body, stop
        self.waiter = _Waiter()
        self.since: Any = _since(params.get("since"))
        self.read_params = {k: v for k, v in params.items() if k not in FEED_SHAPE}
        self.limit = int(params["limit"]) if "limit" in params else None
        heartbeat = params.get("heartbeat")
        self.heartbeat_s: float | None = None
        if heartbeat is not None:
            ms = DEFAULT_HEARTBEAT_MS if heartbeat == "true" else int(heartbeat)
            self.heartbeat_s = max(ms, 50) / 1000
        # CouchDB ignores the timeout when a heartbeat is asked for.
        timeout_ms = int(params.get("timeout", DEFAULT_TIMEOUT_MS))
        self.timeout_s = None if self.heartbeat_s is not None else max(timeout_ms, 0) / 1000
        self.response: web.StreamResponse | None = None

    async def read(self, params: dict[str, str] | None = None) -> _Read:
        try:
            return await self.hub._read(
                self.db, self.uid, self.app, self.since, params or self.read_params, self.body
            )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("a held feed's read failed: %s", type(exc).__name__)
            if self.response is None:
                raise UpstreamUnavailable() from None
            raise _CutOff() from None

    async def _start(self, headers: dict[str, str] | None = None) -> web.StreamResponse:
        if self.response is None:
            response = web.StreamResponse(status=200)
            response.headers.update(headers or {"Content-Type": "application/json"})
            response.headers.setdefault("Cache-Control", "must-revalidate")
            await response.prepare(self.request)
            self.response = response
        return self.response

    async def _answer(self, read: _Read) -> web.StreamResponse:
        """Send a read's answer as the long poll's: whole, or its body after heartbeats."""
        if self.response is None:
            if read.status != 200:  # retold as the proxy retells upstream errors
                return upstream_errors.client_error(read.status, read.body, self.uid, self.app)
            response = web.Response(status=read.status, body=read.body, headers=read.headers)
            await response.prepare(self.request)
            await response.write_eof()
            return response
        if read.status != 200:
            raise _CutOff()
        await self.response.write(read.body)
        await self.response.write_eof()
        return self.response

    def _cut_off(self) -> web.StreamResponse:
        """Too late for an error: the client sees the connection drop and asks again."""
        if self.request.transport is not None:
            self.request.transport.close()
        return self.response or web.StreamResponse()

    async def _wait(self, deadline: float | None) -> str:
        """Until woken, stopped, or a heartbeat or the deadline is due: "woken", "stop",
        "deadline" or "heartbeat"."""
        loop = asyncio.get_running_loop()
        waits = [self.heartbeat_s] if self.heartbeat_s is not None else []
        if deadline is not None:
            waits.append(max(deadline - loop.time(), 0))
        waiting: asyncio.Future[str] = loop.create_future()
        self.waiter.waiting = waiting
        timer = loop.call_later(min(waits), self.waiter.wake, "tick") if waits else None
        unsubscribe = self.stop.on_set(lambda: self.waiter.wake("stop"))
        try:
            why = await waiting
        finally:
            self.waiter.waiting = None
            unsubscribe()
            if timer is not None:
                timer.cancel()
        if why == "tick":
            return "deadline" if deadline is not None and loop.time() >= deadline else "heartbeat"
        return why

    async def _next(self, deadline: float | None) -> str:
        """What the feed does next: read again at once ("woken") if a write came since its last
        read (while it read, or as it sent a heartbeat), else what ``_wait`` says."""
        if self.waiter.take():
            return "woken"
        why = await self._wait(deadline)
        if why == "woken":
            self.waiter.take()  # this wake is the one about to be read
        return why

    def _held(self) -> bool:
        """Whether nothing can have changed since our position: the watch vouches for it."""
        return self.hub.watching and self.hub._latest.get(self.db, _UNKNOWN) == self.since

    async def _resolve_now(self) -> None:
        if self.since == "now":
            latest = self.hub._latest.get(self.db, _UNKNOWN)
            self.since = latest if latest is not _UNKNOWN else (await self.read()).last_seq

    async def answer(self, shape: str) -> web.StreamResponse:
        """Serve the feed as ``shape`` (longpoll or continuous) until it ends; once its answer has
        started, a failure can only cut the connection."""
        try:
            return await (self._longpoll() if shape == "longpoll" else self._continuous())
        except (_CutOff, _TooLarge):
            return self._cut_off()

    async def _longpoll(self) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        deadline = None if self.timeout_s is None else loop.time() + self.timeout_s
        await self._resolve_now()
        must_read = True
        while True:
            if must_read and not self._held():
                read = await self.read()
                if read.status != 200 or read.rows:
                    return await self._answer(read)
                # Nothing after our position up to the read's: wait from there, so this feed
                # shares the next read with every other feed of the database that waits too.
                # Not with a filter: CouchDB counts its ``pending`` from where the read began.
                if "filter" not in self.read_params:
                    self.since = read.last_seq
            why = await self._next(deadline)
            must_read = why == "woken"
            if why == "heartbeat":
                await (await self._start()).write(b"\n")
            elif why == "deadline":
                return await self._answer(await self.read())
            elif why == "stop":  # a whole, empty answer, so the client asks again (and is refused)
                response = await self._start()
                await response.write(
                    b'{"results":[],"last_seq":' + json.dumps(self.since).encode() + b"}\n"
                )
                await response.write_eof()
                return response

    async def _continuous(self) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        await self._resolve_now()
        response = await self._start()
        sent = 0
        deadline = None if self.timeout_s is None else loop.time() + self.timeout_s
        must_read = True
        while True:
            if must_read and not self._held():
                batch = BATCH if self.limit is None else min(BATCH, self.limit - sent)
                read = await self.read({**self.read_params, "limit": str(batch)})
                if read.status != 200:
                    raise _CutOff()
                for row in read.rows:
                    await response.write(json.dumps(row, separators=(",", ":")).encode() + b"\n")
                sent += len(read.rows)
                self.since = read.last_seq
                if self.limit is not None and sent >= self.limit:
                    return await self._end_continuous()
                if read.rows and self.timeout_s is not None:
                    deadline = loop.time() + self.timeout_s
                if read.rows and read.pending != 0:
                    continue  # more to read at once
            why = await self._next(deadline)
            must_read = why == "woken"
            if why == "heartbeat":
                await response.write(b"\n")
            elif why == "deadline":
                return await self._end_continuous()
            elif why == "stop":
                await response.write_eof()
                return response

    async def _end_continuous(self) -> web.StreamResponse:
        assert self.response is not None
        end = {"last_seq": self.since, "pending": 0}
        await self.response.write(json.dumps(end, separators=(",", ":")).encode() + b"\n")
        await self.response.write_eof()
        return self.response


class _CutOff(Exception):
    """The feed's answer has started and cannot become an error any more."""


_UNKNOWN = object()
