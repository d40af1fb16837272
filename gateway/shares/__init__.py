"""Private share links (docs/share-links.md): one note sealed under a key that only the link's
fragment carries. The server stores the sealed copy, its owner and expiry, and nothing readable.

``/shares/api`` for owners, ``/s/<id>`` (page) and ``/s/<id>/data`` (sealed copy) for anyone
holding the link, ``/shares/static/`` for the page's script and the bundle the demo also uses.
"""

from __future__ import annotations

from aiohttp import web

from gateway.limits.rates import RateLimiter
from gateway.shares.page import STATIC, share_page
from gateway.shares.routes import FETCH_LIMITER, SHARES, routes
from gateway.shares.store import ShareStore

__all__ = ["SHARES", "ShareStore", "setup"]


def setup(app: web.Application) -> None:
    """Routes and the per-IP limiter; the store is attached once the backend is open."""
    app[FETCH_LIMITER] = RateLimiter()
    app.router.add_routes(routes)
    app.router.add_get("/s/{id}", share_page)
    app.router.add_static("/shares/static/", STATIC)
