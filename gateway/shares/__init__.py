"""Private share links (docs/share-links.md): one note sealed under a key that only the link's
fragment carries. The server stores the sealed copy, its owner and expiry, and nothing readable.

``/shares/api`` for owners, ``/s/<id>`` (page) and ``/s/<id>/data`` (sealed copy) for anyone
holding the link, ``/shares/static/`` for the page's script and the bundle the demo also uses.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web

from gateway.limits import RateLimiter
from gateway.shares.page import STATIC, share_page
from gateway.shares.routes import FETCH_LIMITER, SHARES, routes
from gateway.shares.store import ShareStore

__all__ = ["SHARES", "ShareStore", "setup", "sweep_forever"]

log = logging.getLogger(__name__)


async def sweep_forever(store: ShareStore, interval_s: float) -> None:
    """Expired shares are deleted now and then (a dead link answers 404 before that anyway), so
    sealed copies do not outlive their links in the records."""
    while True:
        try:
            swept = await store.sweep_expired()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("sweeping expired shares failed: %s", type(exc).__name__)
        else:
            if swept:
                log.info("swept %d expired share link(s)", swept)
        await asyncio.sleep(interval_s)


def setup(app: web.Application) -> None:
    """Routes and the per-IP limiter; the store is attached once the backend is open."""
    app[FETCH_LIMITER] = RateLimiter()
    app.router.add_routes(routes)
    app.router.add_get("/s/{id}", share_page)
    app.router.add_static("/shares/static/", STATIC)
