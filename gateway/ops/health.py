"""What operators and orchestrators ask: ``/healthz``, ``/readyz``, ``/metrics``; and getting
ready when the upstream comes up later than the gateway.

``/healthz`` says the process serves (a liveness probe: restart it if this fails). ``/readyz``
says it can do its work: the upstream answers and accepts couchgate's admin credentials (a
readiness probe: send no traffic until it passes). A gateway whose upstream is down still
starts, answers both probes, and keeps trying to reach the upstream in the background; until it
has, every other request gets a 503 that clients retry.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

import aiohttp
from aiocouch.exception import ForbiddenError, UnauthorizedError
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST

from gateway import keys
from gateway.auth.identity import bearer_or_basic_secret
from gateway.errors import Forbidden, Unauthorized, UpstreamUnavailable, json_error
from gateway.limits.rates import is_loopback
from gateway.ops.metrics import METRICS
from gateway.upstream.backend import Backend
from gateway.upstream.member_auth import admin_headers

log = logging.getLogger(__name__)

PROBE_TIMEOUT = aiohttp.ClientTimeout(total=5)
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 30.0
OPS_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics"})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    backend = request.app.get(keys.BACKEND)
    if backend is None or not backend.records_ready:
        return _not_ready("couchgate is waiting for the database")
    url = backend.url / backend.settings.records_db
    try:
        async with backend.http.get(
            url, headers=admin_headers(backend.settings), timeout=PROBE_TIMEOUT
        ) as resp:
            status = resp.status
    except (aiohttp.ClientError, TimeoutError):
        return _not_ready("the database is not reachable")
    if status in (401, 403):
        return _not_ready("the database refused couchgate's admin credentials")
    if status != 200:
        return _not_ready(f"the database answered {status}")
    return web.json_response({"ok": True})


def _not_ready(reason: str) -> web.Response:
    return json_error(503, "service_unavailable", reason)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus' scrape. With ``metrics_token`` set it takes that bearer token; without, only
    callers on this machine that did not come through a reverse proxy (which would make every
    outside caller look local)."""
    token = request.app[keys.SETTINGS].metrics_token
    if token is not None:
        given = bearer_or_basic_secret(request.headers.get(hdrs.AUTHORIZATION)) or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized("metrics need the metrics token")
    elif not is_loopback(request.remote) or _proxied(request):
        raise Forbidden("metrics are served to this machine only; set COUCHGATE_METRICS_TOKEN")
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={hdrs.CONTENT_TYPE: CONTENT_TYPE_LATEST})


def _proxied(request: web.Request) -> bool:
    return any(h in request.headers for h in ("X-Forwarded-For", "Forwarded", "X-Real-IP"))


@web.middleware
async def readiness_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Until the records database is reachable, everything but the probes is a retryable 503."""
    if request.path not in OPS_PATHS:
        backend = request.app.get(keys.BACKEND)
        if backend is None or not backend.records_ready:
            raise UpstreamUnavailable("couchgate is starting: the database is not reachable yet")
    return await handler(request)


async def try_records(backend: Backend) -> bool:
    """One attempt at making the records database ready; logs why it failed."""
    try:
        await backend.ensure_records()
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("the upstream is not reachable yet (%s)", type(exc).__name__)
    except (UnauthorizedError, ForbiddenError):
        log.error("the upstream refused couchgate's admin credentials (upstream_user/password)")
    except (ValueError, KeyError) as exc:  # aiocouch's errors for other answers (400, 404, 412)
        log.error("the upstream refused to set up the records database (%s)", type(exc).__name__)
    return backend.records_ready


async def until_ready(backend: Backend) -> None:
    """Retry :func:`try_records` with a growing pause until it succeeds."""
    pause = RETRY_FIRST_S
    while not await try_records(backend):
        await asyncio.sleep(pause)
        pause = min(pause * 2, RETRY_MAX_S)
    log.info("the upstream is ready")
