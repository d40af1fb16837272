"""The self-service JSON API: your devices, your apps' remote copies, your account.

Deleting a remote copy leaves the devices' own copies alone (the person may sync again later);
deleting the account revokes every device, ending their live feeds at once, and deletes every
database it had.
"""

from __future__ import annotations

from aiohttp import web

from gateway import keys
from gateway.accounts import lifecycle
from gateway.auth.identity import authenticate, authenticate_account
from gateway.auth.records.base import iso
from gateway.auth.routes import revoke_device
from gateway.config import APP_NAME
from gateway.errors import NotFound
from gateway.limits.quotas import quota_report

routes = web.RouteTableDef()


@routes.get("/account/api")
async def me(request: web.Request) -> web.Response:
    device, user = await authenticate_account(request)
    return web.json_response(
        {
            "user": user.uid,
            "device": device.device,
            "created": iso(user.created),
            "apps": list(user.apps),
        }
    )


@routes.get("/account/api/devices")
async def devices(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    mine = await request.app[keys.IDENTITIES].devices.of(caller.uid)
    return web.json_response(
        [
            {**d.public(), "current": d.device == caller.device}
            for d in sorted(mine, key=lambda d: d.created)
        ]
    )


# The same act as DELETE /auth/devices/{id}, under the account API too: one handler serves both.
routes.delete("/account/api/devices/{device}")(revoke_device)


@routes.get("/account/api/apps")
async def apps(request: web.Request) -> web.Response:
    _, user = await authenticate_account(request)
    usage = await lifecycle.usage(request.app[keys.BACKEND], user)
    return web.json_response(
        [{**u.public(), "quota": await quota_report(request.app, user.uid, u.app)} for u in usage]
    )


@routes.delete("/account/api/apps/{app}")
async def delete_app(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    name = request.match_info["app"]
    user = await request.app[keys.IDENTITIES].user(caller.uid)
    if user is None or not APP_NAME.match(name):
        raise NotFound("no such app")
    # Deleted upstream even when the records do not list it (a creation they lost).
    if name not in user.apps and name not in await request.app[keys.BACKEND].user_db_apps(
        caller.uid
    ):
        raise NotFound("no such app")
    await lifecycle.delete_app_data(request.app, caller.uid, name)
    return web.json_response({"ok": True})


@routes.delete("/account/api")
async def delete_account(request: web.Request) -> web.Response:
    caller = await authenticate(request)
    if await lifecycle.delete_account(request.app, caller.uid) is None:
        raise NotFound("no such account")
    return web.json_response({"ok": True})
