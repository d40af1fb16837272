"""``GET /account/api/export`` and ``POST /account/api/import``, with a device token.

The export streams as it is read from the upstream; an upstream failure midway ends the
response without its end line, which the importer (and ``couchgate-sync export``) tell from a
whole archive.
"""

from __future__ import annotations

import logging

from aiohttp import web

from gateway import keys
from gateway.archive.exporter import export_lines
from gateway.archive.format import MEDIA_TYPE
from gateway.archive.importer import Importer
from gateway.auth.identity import authenticate, authenticate_account
from gateway.errors import CouchError
from gateway.web.bodies import read_stream

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

IMPORT_ENCODINGS = ("gzip",)
"""What ``Content-Encoding`` an import may come in (docs/export.md); any other: 415."""


@routes.get("/account/api/export")
async def export(request: web.Request) -> web.StreamResponse:
    _, user = await authenticate_account(request)
    lines = export_lines(request.app[keys.BACKEND], user)
    first = await anext(lines)  # an upstream that is down still gets a proper error answer
    response = web.StreamResponse(
        headers={
            "Content-Type": MEDIA_TYPE,
            "Content-Disposition": 'attachment; filename="couchgate-export.ndjson"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    await response.write(first)
    try:
        async for line in lines:
            await response.write(line)
    except CouchError as exc:
        log.warning("export ended early: %s", exc.error)
        return response  # no end line: the reader knows it is cut off
    await response.write_eof()
    return response


@routes.post("/account/api/import")
async def import_(request: web.Request) -> web.Response:
    device = await authenticate(request)
    importer = Importer(request.app[keys.BACKEND], request.app[keys.IDENTITIES], device.uid)
    settings = request.app[keys.SETTINGS]
    body = read_stream(request, settings.max_import_size, encodings=IMPORT_ENCODINGS)
    report = await importer.load(body, settings.max_request_size)
    return web.json_response(report.public())
