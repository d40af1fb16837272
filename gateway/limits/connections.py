"""What one process can hold open at once, and how long a client may hold it doing nothing.

Every connection is a file descriptor, and a live feed holds about three (the client's socket,
the upstream's, and with the embedded store the store's end of that one). At the soft
``RLIMIT_NOFILE`` ``accept()`` starts failing and the process answers nobody, so:

- the soft limit is raised to the hard one at start (:func:`raise_fd_limit`);
- a budget derived from it refuses a request with a clean 503 while descriptors remain for the
  upstream pool, the store's files and the answer itself (:class:`Capacity`);
- live feeds are bounded for the whole process here, and per user over every replica by leases
  (gateway/limits/leases.py), before they are opened;
- a connection that sends no whole request within ``idle_timeout`` is closed by aiohttp's
  keep-alive timer (:func:`runner_options`), and a request body that stops arriving for as
  long is ended with 408 (:class:`BodyWatch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from gateway import keys
from gateway.auth.identity import authenticate
from gateway.config import Settings
from gateway.errors import (
    UNREADABLE_BODY,
    AtCapacity,
    BadRequest,
    CouchError,
    RequestTimeout,
)
from gateway.limits.leases import FEED_LEASES
from gateway.replication import paths
from gateway.replication.proxy import PREFIX
from gateway.replication.stream import is_live

log = logging.getLogger(__name__)

FDS_PER_FEED = 3
"""A forwarded live feed: the client's socket and both ends of the loopback to the upstream."""
MIN_RESERVE = 64
"""Descriptors kept for what is not a client: the upstream pool's idle connections, SQLite's
files and journals, the listening sockets, DNS, the log."""
FEED_SHARE = 2 / 3
"""At most this much of the usable descriptors go to live feeds; the rest stay for requests."""
SAMPLE_S = 0.05
RETRY_AFTER_S = 5
NO_BUDGET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
FD_DIR = "/proc/self/fd"


def raise_fd_limit() -> int:
    """Raise the soft open-file limit to the hard one; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit: %s", type(exc).__name__)
    elif hard == resource.RLIM_INFINITY and soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return soft


def open_fds() -> int | None:
    """Descriptors this process has open now (None where the system does not say)."""
    try:
        return len(os.listdir(FD_DIR))
    except OSError:
        return None


class Capacity:
    """The process-wide budget: descriptors (sampled, at most every :data:`SAMPLE_S`) and live
    feeds (counted)."""

    def __init__(self, settings: Settings, fd_limit: int) -> None:
        self.fd_limit = fd_limit
        self.reserve = max(MIN_RESERVE, fd_limit // 10)
        usable = max(0, fd_limit - self.reserve)
        # A feed couchgate holds (changes_hub) costs its client's socket alone; a forwarded one
        # three. Descriptors in use are sampled as well (check_fds), whichever a feed becomes.
        per_feed = 1 if settings.feed_multiplexing else FDS_PER_FEED
        self.max_feeds = settings.max_live_feeds or max(1, int(usable * FEED_SHARE) // per_feed)
        self.live_feeds = 0
        self._sampled_at = -1.0
        self._in_use: int | None = None

    def check_fds(self) -> None:
        now = time.monotonic()
        if now - self._sampled_at >= SAMPLE_S:
            self._sampled_at, self._in_use = now, open_fds()
        if self._in_use is not None and self._in_use >= self.fd_limit - self.reserve:
            raise AtCapacity(
                "the server is at its connection limit; retry shortly", retry_after=RETRY_AFTER_S
            )

    @contextlib.contextmanager
    def feed(self) -> Iterator[None]:
        """Hold one live feed of this process for the ``with`` block, or refuse it."""
        if self.live_feeds >= self.max_feeds:
            raise AtCapacity(
                "the server holds as many live feeds as it can; retry shortly",
                retry_after=RETRY_AFTER_S,
            )
        self.live_feeds += 1
        try:
            yield
        finally:
            self.live_feeds -= 1


CAPACITY = web.AppKey("capacity", Capacity)


def _live_feed(request: web.Request) -> bool:
    raw_path, _, raw_query = request.raw_path.partition("?")
    if not raw_path.startswith(PREFIX + "/"):
        return False
    target = paths.classify(request.method, raw_path[len(PREFIX) :])
    if not target.is_live_feed_candidate:
        return False
    return is_live(paths.with_query(target, raw_query, request.method))


@web.middleware
async def capacity_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse, before any work, what the process could not hold: any request when descriptors
    run short, a live feed past the process's budget or its user's (over every replica). A 503
    closes its connection, so a refusal frees a descriptor too."""
    if request.path in NO_BUDGET_PATHS:
        return await handler(request)
    capacity = request.app[CAPACITY]
    try:
        capacity.check_fds()
        if not _live_feed(request):
            return await handler(request)
        device = await authenticate(request)
        with capacity.feed():
            async with request.app[FEED_LEASES].hold(device.uid):
                return await handler(request)
    except AtCapacity as exc:
        response = exc.response()
        response.force_close()
        return response


class BodyWatch:
    """Ends a request whose body stops arriving: if no byte came for ``idle`` seconds and the
    body is not complete, reading it fails with 408. Timers, not a task per request."""

    def __init__(self, request: web.Request, idle: float) -> None:
        self._request, self._idle = request, idle
        self._seen = -1
        self.fired = False
        self._handle: asyncio.TimerHandle | None = None
        self._check()

    def _check(self) -> None:
        content = self._request.content
        self._handle = None
        if content.is_eof():
            return
        if content.total_bytes == self._seen:
            log.info("request body stalled for %.0f s: ended", self._idle)
            self.fired = True
            content.set_exception(RequestTimeout())
            return
        self._seen = content.total_bytes
        self._handle = asyncio.get_running_loop().call_later(self._idle, self._check)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


@web.middleware
async def body_timeout_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """When a body broke (stalled, or does not decode as its Content-Encoding says), whatever
    that made of the handler (the refusal itself, or a failure further on), the client gets
    408 or 400 if nothing was sent yet, and the connection is closed after the answer: what is
    left of the body is never waited for, nor read again."""
    if not request.body_exists:
        return await handler(request)
    watch = BodyWatch(request, request.app[keys.SETTINGS].idle_timeout)
    try:
        response = await handler(request)
    except CouchError as refused:
        if _broken_body(request, watch) is None:
            raise
        response = refused.response()  # its own refusal stands (415 for an encoding, say)
    except Exception:
        refusal = _broken_body(request, watch)
        if refusal is None:
            raise
        response = refusal.response()
    finally:
        watch.cancel()
    if _broken_body(request, watch) is not None:
        await _send_and_close(request, response)
    return response


def _broken_body(request: web.Request, watch: BodyWatch) -> CouchError | None:
    if watch.fired:
        return RequestTimeout()
    if isinstance(request.content.exception(), RequestPayloadError):
        return BadRequest(UNREADABLE_BODY)
    return None


async def _send_and_close(request: web.Request, response: web.StreamResponse) -> None:
    if not response.prepared:
        response.force_close()  # says Connection: close, so no client reuses the connection
        await response.prepare(request)
    await response.write_eof()
    if request.protocol is not None:
        request.protocol.force_close()


async def _start(app: web.Application) -> None:
    settings = app[keys.SETTINGS]
    capacity = Capacity(settings, raise_fd_limit())
    app[CAPACITY] = capacity
    log.info(
        "open-file limit %d: up to %d live feeds, requests refused with %d descriptors left",
        capacity.fd_limit,
        capacity.max_feeds,
        capacity.reserve,
    )


def setup(app: web.Application) -> None:
    app.on_startup.append(_start)


def runner_options(settings: Settings) -> dict[str, Any]:
    """What the server runner needs from the settings: aiohttp's keep-alive timer, armed from
    the moment a connection opens, also closes one that never sends a whole request."""
    return {"keepalive_timeout": settings.idle_timeout}
