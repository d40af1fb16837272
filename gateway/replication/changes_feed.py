"""One client's long poll or continuous ``_changes`` feed while the hub holds it.

The feed waits on its database's :class:`Waiter` and reads through the hub
(:meth:`ChangesHub.read`), so every feed of a database at one position shares one upstream
read. Feeds the hub cannot serve exactly (parameters outside :data:`PARAMETERS`, ``eventsource``,
an upstream without ``_db_updates`` such as pouchdb-server) are forwarded as before
(:func:`multiplexable`). Once a feed's answer has started, a failure can only cut the
connection: the client sees it drop and asks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from gateway.errors import UpstreamUnavailable
from gateway.replication import upstream_errors
from gateway.replication.changes_hub import UNKNOWN, ChangesHub, Read, TooLarge, Waiter, Wake
from gateway.replication.feeds import Stop
from gateway.replication.paths import Target
from gateway.upstream.backend import db_name

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


async def serve(
    hub: ChangesHub,
    request: web.Request,
    uid: str,
    target: Target,
    body: bytes | None,
    stop: Stop,
) -> web.StreamResponse:
    """Answer one long poll or continuous feed from the hub."""
    params = dict(parse_qsl(target.query, keep_blank_values=True))
    feed = _Feed(hub, request, uid, target.app, params, body, stop)
    async with hub.waiting_on(feed.db) as waiter:
        feed.waiter = waiter
        return await feed.answer(target.feed)


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


class _CutOff(Exception):
    """The feed's answer has started and cannot become an error any more."""


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
        self.waiter = Waiter()
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

    async def read(self, params: dict[str, str] | None = None) -> Read:
        try:
            return await self.hub.read(
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

    async def _answer(self, read: Read) -> web.StreamResponse:
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

    async def _wait(self, deadline: float | None) -> Wake:
        """Until woken, stopped, or a heartbeat or the deadline is due (never a TICK)."""
        loop = asyncio.get_running_loop()
        waits = [self.heartbeat_s] if self.heartbeat_s is not None else []
        if deadline is not None:
            waits.append(max(deadline - loop.time(), 0))
        waiting: asyncio.Future[Wake] = loop.create_future()
        self.waiter.waiting = waiting
        timer = loop.call_later(min(waits), self.waiter.wake, Wake.TICK) if waits else None
        unsubscribe = self.stop.on_set(lambda: self.waiter.wake(Wake.STOP))
        try:
            why = await waiting
        finally:
            self.waiter.waiting = None
            unsubscribe()
            if timer is not None:
                timer.cancel()
        if why is Wake.TICK:
            due = deadline is not None and loop.time() >= deadline
            return Wake.DEADLINE if due else Wake.HEARTBEAT
        return why

    async def _next(self, deadline: float | None) -> Wake:
        """What the feed does next: read again at once (WOKEN) if a write came since its last
        read (while it read, or as it sent a heartbeat), else what ``_wait`` says."""
        if self.waiter.take():
            return Wake.WOKEN
        why = await self._wait(deadline)
        if why is Wake.WOKEN:
            self.waiter.take()  # this wake is the one about to be read
        return why

    def _held(self) -> bool:
        """Whether nothing can have changed since our position: the watch vouches for it."""
        return self.hub.watching and self.hub.latest(self.db) == self.since

    async def _resolve_now(self) -> None:
        if self.since == "now":
            latest = self.hub.latest(self.db)
            self.since = latest if latest is not UNKNOWN else (await self.read()).last_seq

    async def answer(self, shape: str) -> web.StreamResponse:
        """Serve the feed as ``shape`` (longpoll or continuous) until it ends; once its answer has
        started, a failure can only cut the connection."""
        try:
            return await (self._longpoll() if shape == "longpoll" else self._continuous())
        except (_CutOff, TooLarge):
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
            must_read = why is Wake.WOKEN
            if why is Wake.HEARTBEAT:
                await (await self._start()).write(b"\n")
            elif why is Wake.DEADLINE:
                return await self._answer(await self.read())
            elif (
                why is Wake.STOP
            ):  # a whole, empty answer, so the client asks again (and is refused)
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
            must_read = why is Wake.WOKEN
            if why is Wake.HEARTBEAT:
                await response.write(b"\n")
            elif why is Wake.DEADLINE:
                return await self._end_continuous()
            elif why is Wake.STOP:
                await response.write_eof()
                return response

    async def _end_continuous(self) -> web.StreamResponse:
        assert self.response is not None
        end = {"last_seq": self.since, "pending": 0}
        await self.response.write(json.dumps(end, separators=(",", ":")).encode() + b"\n")
        await self.response.write_eof()
        return self.response
