"""Self-service for a signed-in person: ``/account`` (a page) and ``/account/api`` (JSON).

The API authenticates by device token (``Authorization: Bearer``), which browsers never attach on
their own, so a cross-site page cannot make these calls: no CSRF token is needed. Errors have
CouchDB's ``{"error", "reason"}`` shape like every other API of couchgate.
"""

from __future__ import annotations

from aiohttp import web

from gateway.accounts.api import routes
from gateway.archive.routes import routes as archive_routes
from gateway.demo import PAGE_HEADERS, STATIC


async def _page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "account.html", headers=PAGE_HEADERS)


def setup(app: web.Application) -> None:
    app.router.add_get("/account", _page)
    app.router.add_routes(routes)
    app.router.add_routes(archive_routes)  # /account/api/export, /account/api/import
