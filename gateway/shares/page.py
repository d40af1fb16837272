"""The page a share link opens: one static file for every id, so a dead link and a live one are
served alike; the script then fetches the sealed copy and opens it with the fragment's key."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from gateway.shares.routes import check_fetch_rate

STATIC = Path(__file__).parent / "static"

PAGE_HEADERS = {
    # The note's Markdown is sanitized and inserted as DOM, never run: no inline script, no
    # other origin, no images, no forms; the fragment leaves in no Referer header.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


async def share_page(request: web.Request) -> web.FileResponse:
    check_fetch_rate(request)
    return web.FileResponse(STATIC / "share.html", headers=PAGE_HEADERS)
