"""The notes demo at ``/demo/``: a static page, PouchDB in the browser and the ep1 plugin.

Everything here is a file: the page, its script, and the committed bundle in ``static/vendor/``
(built by ``npm run build:demo``; see build.mjs), so serving it needs no Node. The server only
ever sees ciphertext: the key stays on the devices and travels between them in a QR code
whose link keeps it in the URL fragment, which browsers never send.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

HERE = Path(__file__).parent
STATIC = HERE / "static"

PAGE_HEADERS = {
    # Inline SVG QR codes are markup, not images; the bundle needs no eval and no WebAssembly.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def _bare(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/demo/")


async def _page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)


def setup(app: web.Application) -> None:
    app.router.add_get("/demo", _bare)
    app.router.add_get("/demo/", _page)
    app.router.add_static("/demo/static/", STATIC)
