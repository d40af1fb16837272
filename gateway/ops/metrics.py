"""Prometheus metrics through the official ``prometheus_client``, one registry per app.

A registry of its own (not the process-global one) lets several apps live in one process, as
they do in the tests, without their collectors clashing. Labels are bounded sets only: route
classes (never raw paths, which carry document ids), known methods, status codes. Upstream calls
are timed by an aiohttp ``TraceConfig`` on the shared session, so the proxy needs no hooks.

The ``METRICS`` key lives here rather than in :mod:`gateway.keys`: this module reads request
keys, so ``keys`` importing it would be a cycle.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from types import SimpleNamespace

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gateway.replication.feeds import FeedRegistry
from gateway.web.middlewares import route_class

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "COPY"})
SIGN_IN_STEPS = {
    "/auth/code": "code",
    "/auth/token": "token",
    "/auth/enroll": "enroll",
    "/auth/link/redeem": "link",
}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
CLIENT_GONE = "499"  # nginx's code for a client that left before its answer
OVERHEAD_BUCKETS = (
    0.0001,
    0.0002,
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    1,
)
LIVE = web.RequestKey("live_feed", bool)
"""Set by the proxy on live feeds, whose life is the client's, not couchgate's work."""
# The upstream waits of the request being handled, summed by the session's trace: what the
# gateway itself took is the request's time less these.
_UPSTREAM_WAIT: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "couchgate_upstream_wait", default=None
)


class Metrics:
    """Every instrument of one gateway app."""

    def __init__(self, feeds: FeedRegistry) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "couchgate_requests",
            "Requests answered, by route class, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "couchgate_request_duration_seconds",
            "Time from request to the end of its answer (live feeds: their whole life)",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.bytes_in = Counter(
            "couchgate_request_bytes", "Request body bytes received", ["route"], registry=r
        )
        self.bytes_out = Counter(
            "couchgate_response_bytes", "Response bytes sent", ["route"], registry=r
        )
        self.live_feeds = Gauge("couchgate_live_feeds", "Open live feeds", registry=r)
        self.live_feeds.set_function(lambda: len(feeds))
        self.upstream_latency = Histogram(
            "couchgate_upstream_duration_seconds",
            "Time until the upstream's response headers",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "couchgate_gateway_seconds",
            "Time a request spent in couchgate itself: its whole time less the upstream's time "
            "to answer each call it made (live feeds not counted)",
            ["route"],
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "couchgate_upstream_errors",
            "Upstream calls that failed: connection (no answer), status_5xx, refused (401)",
            ["kind"],
            registry=r,
        )
        self.sign_in_attempts = Counter(
            "couchgate_sign_in_attempts", "Sign-in requests, by step", ["step"], registry=r
        )
        self.sign_in_failures = Counter(
            "couchgate_sign_in_failures", "Sign-in requests refused, by step", ["step"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def observe(self, request: web.Request, status: str, elapsed: float, bytes_out: int) -> None:
        route = route_class(request)
        method = request.method if request.method in METHODS else "other"
        self.requests.labels(route, method, status).inc()
        self.latency.labels(route).observe(elapsed)
        self.bytes_in.labels(route).inc(request.content.total_bytes)
        self.bytes_out.labels(route).inc(bytes_out)
        step = SIGN_IN_STEPS.get(route) if method == "POST" else None
        if step is not None:
            self.sign_in_attempts.labels(step).inc()
            if not status.startswith("2"):
                self.sign_in_failures.labels(step).inc()

    def trace_config(self) -> aiohttp.TraceConfig:
        """Times every upstream call of the shared session and counts its failures."""
        trace = aiohttp.TraceConfig()

        async def start(
            _: aiohttp.ClientSession, ctx: SimpleNamespace, __: aiohttp.TraceRequestStartParams
        ) -> None:
            ctx.started = time.monotonic()

        async def end(
            _: aiohttp.ClientSession, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams
        ) -> None:
            method = params.method if params.method in METHODS else "other"
            waited = time.monotonic() - ctx.started
            self.upstream_latency.labels(method).observe(waited)
            spent = _UPSTREAM_WAIT.get()
            if spent is not None:
                spent[0] += waited
            if params.response.status >= 500:
                self.upstream_errors.labels("status_5xx").inc()
            elif params.response.status == 401:
                self.upstream_errors.labels("refused").inc()

        async def failed(
            _: aiohttp.ClientSession,
            __: SimpleNamespace,
            params: aiohttp.TraceRequestExceptionParams,
        ) -> None:
            if not isinstance(params.exception, asyncio.CancelledError):
                self.upstream_errors.labels("connection").inc()

        trace.on_request_start.append(start)
        trace.on_request_end.append(end)
        trace.on_request_exception.append(failed)
        return trace


METRICS = web.AppKey("metrics", Metrics)


def note_upstream_wait(seconds: float) -> None:
    """Count time spent waiting on the upstream's body (a streamed answer) as the upstream's."""
    spent = _UPSTREAM_WAIT.get()
    if spent is not None:
        spent[0] += seconds


def _bytes_sent(response: web.StreamResponse) -> int:
    if response.prepared:
        return response.body_length  # streamed: counted as written, once it ended
    body = response.body if isinstance(response, web.Response) else None
    return len(body) if isinstance(body, bytes) else 0


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: sees every answer as it goes out, errors already shaped into responses."""
    metrics = request.app[METRICS]
    started = time.monotonic()
    waited = [0.0]
    _UPSTREAM_WAIT.set(waited)  # this request's task only: each has its own context
    try:
        response = await handler(request)
    except asyncio.CancelledError:
        metrics.observe(request, CLIENT_GONE, time.monotonic() - started, 0)
        raise
    except web.HTTPException as exc:  # redirects; errors were answered further in
        metrics.observe(request, str(exc.status), time.monotonic() - started, 0)
        raise
    elapsed = time.monotonic() - started
    metrics.observe(request, str(response.status), elapsed, _bytes_sent(response))
    if not request.get(LIVE, False):
        metrics.overhead.labels(route_class(request)).observe(max(elapsed - waited[0], 0.0))
    return response
