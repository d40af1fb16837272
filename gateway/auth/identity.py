"""Who is calling? Authentication of requests by device token (authorization is elsewhere).

Stock CouchDB clients only know Basic auth, so the token is accepted as a Basic password with any
user name, as well as ``Authorization: Bearer <token>``. Every failure is the same 401.
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from gateway import keys
from gateway.auth.records.devices import Device
from gateway.auth.records.users import User
from gateway.auth.tokens import DeviceToken
from gateway.errors import NotFound, Unauthorized

INVALID = "invalid or revoked token"


def bearer_or_basic_secret(header: str | None) -> str | None:
    """The token from an ``Authorization`` header, or None when there is none to be had."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, sep, password = decoded.partition(":")
        return password if sep and password else None
    return None


async def authenticate(request: web.Request) -> Device:
    """The calling device, or :class:`Unauthorized`. Looked up once per request, and counted
    once against the device's request budget (:class:`TooManyRequests` past it)."""
    cached = request.get(keys.IDENTITY)
    if isinstance(cached, Device):
        return cached
    secret = bearer_or_basic_secret(request.headers.get("Authorization"))
    if secret is None:
        raise Unauthorized("authentication required")
    token = DeviceToken.parse(secret)
    if token is None:
        raise Unauthorized(INVALID)
    device = await request.app[keys.IDENTITIES].devices.for_token(token)
    if device is None:
        raise Unauthorized(INVALID)
    request[keys.IDENTITY] = device
    request.app[keys.LIMITS].check_device(request, device, request.get(keys.ROUTE_CLASS))
    if device.seen_long_ago():
        request.app[keys.BACKGROUND].spawn(
            request.app[keys.IDENTITIES].devices.touch(device), "last-seen update"
        )
    return device


async def authenticate_account(request: web.Request) -> tuple[Device, User]:
    """The calling device and its account; :class:`NotFound` when the account is gone (removed
    while the device's token is still good for this request)."""
    device = await authenticate(request)
    user = await request.app[keys.IDENTITIES].user(device.uid)
    if user is None:
        raise NotFound("no such account")
    return device, user
