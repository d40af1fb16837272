"""A user's database for one app: its creation, its info, its deletion, and its membership.

The account's record lists its apps; the database and its ``_security`` follow the record. Each
change of one app's database holds ``app_changes`` for ``uid/app``, so a creation and a deletion
(or a repair) of the same database never interleave in this process.
"""

from __future__ import annotations

import logging

from aiohttp import hdrs, web

from gateway import keys
from gateway.accounts.lifecycle import provision_app
from gateway.auth.records.devices import Device
from gateway.errors import FileExists, NotFound
from gateway.replication.paths import Target
from gateway.replication.stream import (
    UpstreamCall,
    downstream_headers,
    response_from,
    upstream_error,
)
from gateway.shares import SHARES
from gateway.web.bodies import parse_json

log = logging.getLogger(__name__)


async def create(request: web.Request, device: Device, target: Target) -> web.Response:
    """Record the app first (the record's revision enforces the apps-per-user limit across
    replicas), then create its database; a creation that fails gives the place back.

    The steps run to their end even if the client hangs up: cut between the database's creation
    and its ``_security``, CouchDB would keep the database admin-only, closed to its user.
    """
    work = _provision(request, device, target.app)
    if not await request.app[keys.BACKGROUND].finish(work, "database creation"):
        raise FileExists()
    return web.json_response({"ok": True}, status=201)


async def _provision(request: web.Request, device: Device, app: str) -> bool:
    identities, backend = request.app[keys.IDENTITIES], request.app[keys.BACKEND]
    most = request.app[keys.SETTINGS].apps_per_user
    return (await provision_app(identities, backend, device.uid, app, most))[1]


async def delete(request: web.Request, device: Device, target: Target) -> web.Response:
    identities, app = request.app[keys.IDENTITIES], target.app
    async with identities.app_changes.hold(f"{device.uid}/{app}"):
        deleted = await request.app[keys.BACKEND].delete_user_db(device.uid, app)
        await identities.remove_app(device.uid, app)
        await request.app[SHARES].delete_where(device.uid, [app])  # after: see shares/routes
    if not deleted:
        raise NotFound("Database does not exist.")
    return web.json_response({"ok": True})


async def info(request: web.Request, device: Device, target: Target) -> web.Response:
    """The database's info with the name the client knows it by: the app, not ``u<uid>-<app>``."""
    answer = await _info_once(request, device, target)
    if answer.status == 403 and await _restore_membership(request, device, target.app):
        answer = await _info_once(request, device, target)
    return answer


async def _info_once(request: web.Request, device: Device, target: Target) -> web.Response:
    async with UpstreamCall(request, device, target, None, live=False) as up:
        if up.status >= 400:
            return await upstream_error(up, device, target)
        answer = await up.read()
        info = parse_json(answer) if up.status == 200 else None
        if not isinstance(info, dict):
            return response_from(up, answer)
        info["db_name"] = target.app
        headers = downstream_headers(up.headers)
        for name in (hdrs.CONTENT_LENGTH, hdrs.CONTENT_TYPE):
            headers.popall(name, None)
        return web.json_response(info, status=up.status, headers=headers)


async def _restore_membership(request: web.Request, device: Device, app: str) -> bool:
    """After the upstream refused the user their own database (403): if their account lists the
    app, make them its member again and say so.

    Only a database whose ``_security`` was never written (a gateway stopped between creating
    it and writing that) refuses its user, and every replicator asks for the database's info
    before anything else, where it would fail for good without this. In admin mode the
    upstream never refuses the gateway, so nothing is asked.
    """
    if request.app[keys.SETTINGS].upstream_auth == "admin":
        return False
    identities, backend = request.app[keys.IDENTITIES], request.app[keys.BACKEND]
    user = await identities.user(device.uid)
    if user is None or app not in user.apps:
        return False
    async with identities.app_changes.hold(f"{device.uid}/{app}"):
        restored = await backend.ensure_member(device.uid, app)
    if restored:
        log.warning("restored the membership of a database whose _security was never written")
    return restored
