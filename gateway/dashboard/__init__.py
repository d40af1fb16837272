"""The admin dashboard at ``/admin/``: server-rendered pages (jinja2, autoescaped), no scripts,
no build step. ``setup(app)`` is the one call :func:`gateway.app.create_app` makes."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway import keys
from gateway.dashboard.views import routes

HERE = Path(__file__).parent


def setup(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        app_key=keys.JINJA,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        default_helpers=False,
    )
    app.router.add_routes(routes)
    app.router.add_static("/admin/static/", HERE / "static", append_version=True)
