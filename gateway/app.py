"""The application factory: settings in, a ready ``web.Application`` out; nothing at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from gateway import dashboard, demo, keys, shares
from gateway.accounts import routes as account_routes
from gateway.auth.mailer import make_mailer
from gateway.auth.records import IdentityStore
from gateway.auth.revocations import (
    EMBEDDED_POLL_TIMEOUT_MS,
    POLL_TIMEOUT_MS,
    current_seq,
    follow_revocations,
)
from gateway.auth.routes import routes as auth_routes
from gateway.auth.signing import AuthKeys
from gateway.config import Settings
from gateway.limits import connections, quotas
from gateway.limits.leases import FEED_LEASES, FeedLeases
from gateway.limits.rates import Limits
from gateway.ops import health
from gateway.ops.metrics import METRICS, Metrics, metrics_middleware
from gateway.replication import proxy
from gateway.replication.changes_hub import ChangesHub
from gateway.replication.feeds import FeedRegistry
from gateway.tasks import Background
from gateway.upstream.backend import Backend, open_backend
from gateway.upstream.embedded import embedded_upstream
from gateway.web import welcome
from gateway.web.middlewares import (
    AccessLogger,
    cors_middleware,
    error_middleware,
    on_prepare,
    request_id_middleware,
    route_class_middleware,
)

log = logging.getLogger(__name__)

SHUTDOWN_DRAIN_S = 5.0
SWEEP_INTERVAL_S = 900.0

# How every runner of the app is built (the CLI's and the tests'): a handler is cancelled when
# its client goes away, which is what ends an abandoned feed's upstream request. Bodies are not
# inflated by aiohttp (it would do so in one call per chunk, uncounted): web/bodies.py inflates
# where a route takes an encoding, in slices, and refuses one everywhere else.
RUNNER_OPTIONS: dict[str, Any] = {
    "handler_cancellation": True,
    "access_log_class": AccessLogger,
    "auto_decompress": False,
}


def runner_options(settings: Settings) -> dict[str, Any]:
    """:data:`RUNNER_OPTIONS` and what the settings add (the idle timeout of connections)."""
    return {**RUNNER_OPTIONS, **connections.runner_options(settings)}


@contextlib.asynccontextmanager
async def open_upstream(
    settings: Settings, trace_configs: Sequence[aiohttp.TraceConfig] = ()
) -> AsyncIterator[Backend]:
    """The configured CouchDB, or the embedded store when there is none: one path for both.
    Sends nothing upstream yet (see :meth:`Backend.ensure_records`)."""
    async with contextlib.AsyncExitStack() as stack:
        if not settings.upstream_configured:
            settings = await stack.enter_async_context(embedded_upstream(settings))
        yield await stack.enter_async_context(open_backend(settings, trace_configs))


async def _backend_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start serving even when the upstream is down: one attempt now (so a reachable upstream is
    ready before the first request), the rest in the background while the probes say why."""
    trace = app[METRICS].trace_config()
    async with open_upstream(app[keys.SETTINGS], [trace]) as backend:
        app[keys.BACKEND] = backend
        app[keys.IDENTITIES] = IdentityStore(backend.records)
        app[shares.SHARES] = shares.ShareStore(backend.records)
        leases = FeedLeases(app[keys.IDENTITIES].claims, app[keys.SETTINGS].feeds_per_user)
        app[FEED_LEASES] = leases
        hub = app[keys.CHANGES_HUB] = ChangesHub(backend)
        reachable = await health.try_records(backend)
        if reachable:
            await quotas.check_byte_quota_counted(backend)
        since = await current_seq(backend) if reachable else "now"
        chores = asyncio.create_task(_chores(app, backend, since))
        watch = asyncio.create_task(hub.watch()) if app[keys.SETTINGS].feed_multiplexing else None
        renewal = asyncio.create_task(leases.renew_forever())
        yield
        for task in (chores, watch, renewal):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await leases.release_all()
        await app[keys.BACKGROUND].drain(SHUTDOWN_DRAIN_S)


async def _chores(app: web.Application, backend: Backend, since: object) -> None:
    """Once the records are reachable: follow revocations and sweep expired records."""
    await health.until_ready(backend)
    chores = [
        asyncio.create_task(
            follow_revocations(
                backend,
                app[keys.FEEDS],
                app[keys.IDENTITIES],
                since,
                POLL_TIMEOUT_MS
                if app[keys.SETTINGS].upstream_configured
                else EMBEDDED_POLL_TIMEOUT_MS,
            )
        ),
        asyncio.create_task(_sweep_forever(app[keys.IDENTITIES].sweep_expired, "sign-in records")),
        asyncio.create_task(_sweep_forever(app[shares.SHARES].sweep_expired, "share links")),
    ]
    try:
        await asyncio.gather(*chores)
    finally:
        for chore in chores:
            chore.cancel()
        await asyncio.gather(*chores, return_exceptions=True)


async def _sweep_forever(sweep: Callable[[], Awaitable[int]], what: str) -> None:
    """Expired records (sign-in challenges and codes; share links, whose dead links answer 404
    before that anyway) are deleted now and then, so the records stay small."""
    while True:
        try:
            swept = await sweep()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("sweeping expired %s failed: %s", what, type(exc).__name__)
        else:
            if swept:
                log.info("swept %d expired %s", swept, what)
        await asyncio.sleep(SWEEP_INTERVAL_S)


async def _end_feeds(app: web.Application) -> None:
    """On shutdown (after the listening sockets closed, before in-flight requests are waited
    for): end every live feed cleanly so its client reconnects, to another replica if any."""
    ended = app[keys.FEEDS].close_all()
    if ended:
        log.info("shutting down: ended %d live feed(s)", ended)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[
            route_class_middleware,
            metrics_middleware,
            error_middleware,
            request_id_middleware,
            connections.body_timeout_middleware,
            cors_middleware,
            health.readiness_middleware,
            connections.capacity_middleware,
        ],
        client_max_size=settings.max_request_size,
    )
    app[keys.SETTINGS] = settings
    app[keys.AUTH_KEYS] = AuthKeys.from_settings(settings)
    app[keys.MAILER] = make_mailer(settings)
    app[keys.FEEDS] = FeedRegistry()
    app[keys.BACKGROUND] = Background()
    app[keys.LIMITS] = Limits(settings)
    app[METRICS] = Metrics(app[keys.FEEDS])
    connections.setup(app)
    app.cleanup_ctx.append(_backend_ctx)
    app.on_response_prepare.append(on_prepare)
    app.on_shutdown.append(_end_feeds)

    app.router.add_get("/", welcome.root)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    app.router.add_routes(auth_routes)
    dashboard.setup(app)  # /admin/
    demo.setup(app)  # /demo/
    account_routes.setup(app)  # /account, /account/api
    shares.setup(app)  # /s/, /shares/
    app.router.add_route("*", proxy.PREFIX, proxy.handle)
    app.router.add_route("*", proxy.PREFIX + "/{tail:.*}", proxy.handle)
    return app
