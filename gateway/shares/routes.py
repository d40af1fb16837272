"""The share-link API: owners create, re-seal, list and revoke (device token); anyone with a
link fetches its sealed copy (rate-limited per IP).

Every way a link can be dead (expired, revoked, burnt, never issued) answers the same 404, so
nobody learns which it was, nor whether an id ever existed.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from encryption_plugin.envelope import parse_envelope
from encryption_plugin.errors import CryptoError
from gateway import keys
from gateway.auth.identity import authenticate
from gateway.auth.records.base import iso
from gateway.config import APP_NAME
from gateway.errors import BadRequest, NotFound, TooLarge, TooManyRequests
from gateway.limits.rates import MINUTE, RateLimiter, client_ip
from gateway.shares.store import ShareStore
from gateway.web.bodies import read_json_object

routes = web.RouteTableDef()

SHARES = web.AppKey("shares", ShareStore)
FETCH_LIMITER = web.AppKey("share_fetch_limiter", RateLimiter)

DEFAULT_TTL_S = 7 * 24 * 3600
MIN_TTL_S = 60
MAX_TTL_S = 90 * 24 * 3600
BODY_OVERHEAD = 4096
DEAD = "this link has expired, was revoked, or never existed"
DATA_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def dead_link() -> NotFound:
    return NotFound(DEAD)


def _envelope(body: dict[str, Any], max_bytes: int) -> str:
    value = body.get("e2e")
    if not isinstance(value, str):
        raise BadRequest("'e2e' must be the sealed copy (an ep1 string)")
    if len(value) > max_bytes:
        raise TooLarge(f"a shared note is at most {max_bytes} bytes sealed")
    try:
        parse_envelope(value)  # its shape only: the server has no key to open it
    except CryptoError:
        raise BadRequest("'e2e' is not an ep1 envelope") from None
    return value


def _ttl(body: dict[str, Any]) -> float:
    value = body.get("expires_in", DEFAULT_TTL_S)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest("'expires_in' must be a number of seconds")
    if not MIN_TTL_S <= value <= MAX_TTL_S:
        raise BadRequest(f"'expires_in' must be between {MIN_TTL_S} and {MAX_TTL_S} seconds")
    return float(value)


def check_fetch_rate(request: web.Request) -> None:
    """Count one request for a shared page or copy against the caller's IP."""
    settings = request.app[keys.SETTINGS]
    per_minute = settings.share_fetches_per_minute
    ip = client_ip(request, settings.trusted_proxies)
    if per_minute and (wait := request.app[FETCH_LIMITER].take(("share", ip), per_minute, MINUTE)):
        raise TooManyRequests("too many shared-link requests from this address", retry_after=wait)


NOT_YOUR_APP = "'app' must name one of your apps (the note's app)"


@routes.post("/shares/api")
async def create(request: web.Request) -> web.Response:
    device = await authenticate(request)
    settings = request.app[keys.SETTINGS]
    body = await read_json_object(request, settings.share_max_bytes + BODY_OVERHEAD)
    envelope = _envelope(body, settings.share_max_bytes)
    app = body.get("app")
    if not isinstance(app, str) or not APP_NAME.match(app):
        raise BadRequest(NOT_YOUR_APP)
    burn = body.get("burn_after_reading", False)
    if not isinstance(burn, bool):
        raise BadRequest("'burn_after_reading' must be true or false")
    expires = time.time() + _ttl(body)
    store, identities = request.app[SHARES], request.app[keys.IDENTITIES]
    most = settings.shares_per_user
    # Under the app's lifecycle lock, as its creation and deletion: a share made while its app
    # is being deleted either comes first (and goes with the app) or finds no app.
    async with identities.app_changes.hold(f"{device.uid}/{app}"):
        user = await identities.user(device.uid)
        if user is None:
            raise NotFound("no such account")
        if app not in user.apps:
            raise BadRequest(NOT_YOUR_APP)
        share = await store.create(
            device.uid, app, envelope, expires, burn, device.device, most=most
        )
        # Across replicas the lock does not reach: checked again once written, and taken back
        # if the app went meanwhile (its deletion forgets the app before it deletes the app's
        # shares, so a share written before that is deleted with them).
        user = await identities.user(device.uid)
        if user is None or app not in user.apps:
            await store.delete(device.uid, share.id)
            raise BadRequest(NOT_YOUR_APP)
    return web.json_response(
        {"id": share.id, "url": f"/s/{share.id}", "expires": iso(share.expires)}, status=201
    )


@routes.put("/shares/api/{id}")
async def reseal(request: web.Request) -> web.Response:
    device = await authenticate(request)
    settings = request.app[keys.SETTINGS]
    body = await read_json_object(request, settings.share_max_bytes + BODY_OVERHEAD)
    envelope = _envelope(body, settings.share_max_bytes)
    share = await request.app[SHARES].reseal(device.uid, request.match_info["id"], envelope)
    if share is None or share.expired():
        raise NotFound("no such share")
    return web.json_response({"id": share.id, "expires": iso(share.expires)})


@routes.get("/shares/api")
async def listing(request: web.Request) -> web.Response:
    device = await authenticate(request)
    mine = await request.app[SHARES].owned(device.uid)
    now = time.time()
    live = sorted((s for s in mine if not s.expired(now)), key=lambda s: s.created)
    return web.json_response([s.public() for s in live])


@routes.delete("/shares/api/{id}")
async def revoke(request: web.Request) -> web.Response:
    device = await authenticate(request)
    if not await request.app[SHARES].delete(device.uid, request.match_info["id"]):
        raise NotFound("no such share")
    return web.json_response({"ok": True})


@routes.get("/s/{id}/data")
async def data(request: web.Request) -> web.Response:
    check_fetch_rate(request)
    # A HEAD gets no copy, so it must not use up a burn-after-reading share.
    consume = request.method != "HEAD"
    found = await request.app[SHARES].fetch(request.match_info["id"], consume=consume)
    if found is None:
        raise NotFound(DEAD, headers=DATA_HEADERS)
    share, envelope = found
    return web.json_response(
        {
            "e2e": envelope,
            "expires": iso(share.expires),
            "burn_after_reading": share.burn,
        },
        headers=DATA_HEADERS,
    )
