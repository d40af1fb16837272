"""A real couchgate on a loopback port in front of a real upstream, for the integration tests."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from gateway import keys
from gateway.app import create_app, runner_options
from gateway.config import Settings, load_settings
from gateway.upstream.backend import db_name
from tests.upstreams import Upstream

SECRET = "test-secret-key-0123456789abcdef0123456789"


def gateway_settings(upstream: Upstream | None, **overrides: object) -> Settings:
    """Settings for a test gateway: in front of ``upstream``, or (None) on its embedded store,
    whose ``data_dir`` the caller gives."""
    values: dict[str, object] = {
        "secret_keys": SECRET,
        "records_db": f"couchgate-test-{secrets.token_hex(6)}",
        "registration": "open",
        # The proxy's own tests write plaintext; the encryption guard's tests turn this off.
        "plaintext_apps": "*",
    }
    if upstream is not None:
        values.update(
            upstream_url=upstream.url,
            upstream_user=upstream.user,
            upstream_password=upstream.password,
        )
    values.update(overrides)
    return load_settings(env={}, overrides=values)


@dataclass(frozen=True)
class GatewayTarget:
    upstream: Upstream | None
    settings: dict[str, object]


@dataclass
class Device:
    token: str
    user: str
    device: str
    base_url: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def db_url(self, app: str) -> str:
        return f"{self.base_url}/db/{app}"


@dataclass
class GatewayHarness:
    server: TestServer
    upstream: Upstream
    settings: Settings
    session: aiohttp.ClientSession = field(default_factory=aiohttp.ClientSession)

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def app(self) -> web.Application:
        return self.server.app

    async def call(
        self, method: str, path: str, *, device: Device | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        """One request to the gateway; ``(status, parsed JSON body or raw text)``."""
        headers = dict(kwargs.pop("headers", {}))
        if device is not None:
            headers.update(device.headers)
        url = URL(self.url + path, encoded=True)  # sent as written: no client-side normalizing
        async with self.session.request(method, url, headers=headers, **kwargs) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text

    async def peek(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        """A request straight to the upstream as its admin, around the gateway (to see what is
        really stored). Off the event loop: the embedded store answers on this very loop."""
        return await asyncio.to_thread(self.upstream.request, method, path, body)

    async def enrollment_code(self, email: str | None = None) -> tuple[str, str]:
        """What ``couchgate users add`` does: an account and a single-use code for it."""
        identities = self.app[keys.IDENTITIES]
        email_hmac = None if email is None else self.app[keys.AUTH_KEYS].email_hmac(email)
        uid, _ = await identities.users.create(email_hmac)
        code, _ = await identities.grants.create("enroll", uid)
        return uid, code

    async def new_device(
        self, email: str | None = None, *, same_user_as: Device | None = None, name: str = "test"
    ) -> Device:
        if same_user_as is not None:
            status, link = await self.call("POST", "/auth/link", device=same_user_as)
            assert status == 201, link
            status, body = await self.call(
                "POST", "/auth/link/redeem", json={"code": link["code"], "device": name}
            )
        else:
            _, code = await self.enrollment_code(email)
            status, body = await self.call(
                "POST", "/auth/enroll", json={"code": code, "device": name}
            )
        assert status == 201, body
        return Device(body["token"], body["user"], body["device"], self.url)

    async def revoke(self, device: Device) -> None:
        status, body = await self.call("DELETE", f"/auth/devices/{device.device}", device=device)
        assert status == 200, body

    def upstream_db(self, device: Device, app: str) -> str:
        return db_name(device.user, app)


# What the ``make_gateway`` fixture yields: start a gateway with the given settings overrides.
MakeGateway = Callable[..., Awaitable[GatewayHarness]]


async def start_gateway(upstream: Upstream | None, /, **overrides: object) -> GatewayHarness:
    """A test gateway on loopback; ``overrides`` are settings only (no keyword of this function's
    own can be shadowed by a settings dict a caller spreads in)."""
    return await start_gateway_on("127.0.0.1", upstream, **overrides)


async def start_gateway_on(
    host: str, upstream: Upstream | None, /, **overrides: object
) -> GatewayHarness:
    """:func:`start_gateway` listening on ``host`` (``0.0.0.0`` when a container must reach it)."""
    settings = gateway_settings(upstream, **overrides)
    server = TestServer(create_app(settings), host=host)
    # TestServer takes runner options in start_server (its constructor drops them), and sets
    # handler_cancellation itself.
    await server.start_server(
        **{k: v for k, v in runner_options(settings).items() if k != "handler_cancellation"}
    )
    # What the gateway really talks to (the embedded store's address is only known now).
    effective = server.app[keys.BACKEND].settings
    assert effective.upstream_url is not None
    kind = upstream.kind if upstream is not None else "embedded"
    seen = Upstream(
        kind, effective.upstream_url, effective.upstream_user, effective.upstream_password
    )
    return GatewayHarness(server, seen, settings)


async def stop_gateway(harness: GatewayHarness) -> None:
    await harness.session.close()
    await harness.server.close()
