"""The sign-in handshake over HTTP: ``/auth/*``.

Unknown addresses, wrong codes, used and unknown challenges all get the same answers, so the
handshake tells nobody which addresses have accounts.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway import keys
from gateway.accounts.lifecycle import revoke
from gateway.auth import tokens
from gateway.auth.addresses import is_address
from gateway.auth.identity import authenticate
from gateway.auth.records.base import iso
from gateway.auth.records.devices import Device
from gateway.auth.records.grants import GrantKind
from gateway.config import Settings
from gateway.errors import BadRequest, NotFound, Unauthorized
from gateway.web.bodies import read_json_object, string_field

routes = web.RouteTableDef()

BAD_CODE = "invalid or expired code"


def may_register(settings: Settings, email: str) -> bool:
    """Whether an address without an account may create one by email code."""
    if settings.registration == "open":
        return True
    if settings.registration == "allowlist":
        address = tokens.normalize_email(email)
        for entry in settings.allowlist:
            entry = tokens.normalize_email(entry)
            if address == entry or (entry.startswith("@") and address.endswith(entry)):
                return True
    return False


def _signed_in(request: web.Request, token: tokens.DeviceToken, device: Device) -> web.Response:
    request.app[keys.LIMITS].redeemed(request)
    body = {"token": str(token), "user": device.uid, "device": device.device}
    return web.json_response(body, status=201)


def _failed() -> Unauthorized:
    """A wrong, used or expired code: the one answer (its attempt was charged before)."""
    return Unauthorized(BAD_CODE)


async def _new_device(
    request: web.Request, uid: str, name: str
) -> tuple[tokens.DeviceToken, Device]:
    """Sign in one more device of ``uid``, within the account's device limit (each device can
    hold feeds and a request budget of its own, so their number is what bounds one account)."""
    most = request.app[keys.SETTINGS].devices_per_user
    return await request.app[keys.IDENTITIES].devices.create(uid, name, most)


def _device_name(body: dict[str, Any]) -> str:
    return string_field(body, "device", max_length=100)


@routes.post("/auth/code")
async def request_code(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    email = string_field(body, "email", max_length=254)
    if not is_address(email):
        raise BadRequest("'email' is not an email address")
    app = request.app
    auth = app[keys.AUTH_KEYS]
    email_hmac = auth.email_hmac(email)
    app[keys.LIMITS].check_code_request(request, email_hmac)
    permitted = await app[keys.IDENTITIES].users.for_email(email_hmac) is not None or may_register(
        app[keys.SETTINGS], email
    )
    challenge_id = tokens.new_challenge_id()
    code = tokens.new_email_code()
    # The record is written either way, so both answers take the same path and time.
    await app[keys.IDENTITIES].challenges.create(
        challenge_id, email_hmac, auth.code_hash(challenge_id, code), permitted
    )
    if permitted:
        app[keys.BACKGROUND].spawn(app[keys.MAILER].send_code(email, code), "sign-in email")
    return web.json_response({"challenge": auth.sign_challenge(challenge_id)}, status=202)


@routes.post("/auth/token")
async def redeem_code(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    challenge = string_field(body, "challenge", max_length=512)
    code = string_field(body, "code", max_length=32)
    name = _device_name(body)
    app = request.app
    app[keys.LIMITS].check_redeem(request)
    auth = app[keys.AUTH_KEYS]
    challenge_id = auth.open_challenge(challenge)
    if challenge_id is None:
        raise _failed()
    identities = app[keys.IDENTITIES]
    email_hmac = await identities.challenges.redeem(
        challenge_id, auth.code_hash(challenge_id, code.replace(" ", ""))
    )
    if email_hmac is None:
        raise _failed()
    uid, _ = await identities.users.create(email_hmac)
    token, device = await _new_device(request, uid, name)
    return _signed_in(request, token, device)


async def _redeem_grant(request: web.Request, kind: GrantKind) -> web.Response:
    body = await read_json_object(request)
    code = string_field(body, "code", max_length=64)
    name = _device_name(body)
    request.app[keys.LIMITS].check_redeem(request)
    identities = request.app[keys.IDENTITIES]
    uid = await identities.grants.redeem(kind, code)
    if uid is None or await identities.user(uid) is None:
        raise _failed()
    token, device = await _new_device(request, uid, name)
    return _signed_in(request, token, device)


@routes.post("/auth/enroll")
async def enroll(request: web.Request) -> web.Response:
    return await _redeem_grant(request, "enroll")


@routes.post("/auth/link/redeem")
async def redeem_link(request: web.Request) -> web.Response:
    return await _redeem_grant(request, "link")


@routes.post("/auth/link")
async def create_link(request: web.Request) -> web.Response:
    device = await authenticate(request)
    code, expires = await request.app[keys.IDENTITIES].grants.create("link", device.uid)
    return web.json_response({"code": code, "expires": iso(expires)}, status=201)


@routes.get("/auth/me")
async def me(request: web.Request) -> web.Response:
    device = await authenticate(request)
    return web.json_response({"user": device.uid, "device": device.device})


@routes.get("/auth/devices")
async def list_devices(request: web.Request) -> web.Response:
    device = await authenticate(request)
    devices = await request.app[keys.IDENTITIES].devices.of(device.uid)
    return web.json_response([d.public() for d in sorted(devices, key=lambda d: d.created)])


@routes.delete("/auth/devices/{device}")
async def revoke_device(request: web.Request) -> web.Response:
    """Revoke one of the caller's own devices (also served as ``/account/api/devices/{id}``)."""
    caller = await authenticate(request)
    target = request.match_info["device"]
    if not tokens.is_id(target):
        raise NotFound("no such device")
    await revoke(request.app, caller.uid, target)
    return web.json_response({"ok": True})
