"""The dashboard's invitation links come from ``public_url`` only: a forged ``Host`` header never
reaches a link that carries a live enrollment code (without ``public_url``: the code alone)."""

from __future__ import annotations

import re

import aiohttp

from gateway import keys
from gateway.dashboard.records import AdminRecords
from tests.harness import GatewayHarness, MakeGateway

PASSWORD = "correct horse battery staple"
FORGED = "evil.example"


async def _invite_page(gw: GatewayHarness, origin: str) -> str:
    """Sign in and create an invitation, every request with the forged Host header."""
    await AdminRecords(gw.app[keys.BACKEND].records).set_password(PASSWORD)
    headers = {"Host": FORGED, "Origin": origin}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.post(
            f"{gw.url}/admin/login", data={"password": PASSWORD}, headers=headers
        ) as resp:
            assert resp.status == 200, await resp.text()
        async with client.get(f"{gw.url}/admin/invitations", headers=headers) as resp:
            match = re.search(r'name="csrf_token" value="([^"]+)"', await resp.text())
            assert match
        async with client.post(
            f"{gw.url}/admin/invitations",
            data={"csrf_token": match.group(1), "email": "new@example.org"},
            headers=headers,
        ) as resp:
            assert resp.status == 200
            return await resp.text()


def _code(page: str) -> str:
    match = re.search(r'id="enrollment-code">([^<]+)<', page)
    assert match, page
    return match.group(1).strip()


async def test_without_public_url_the_invitation_has_no_link(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    page = await _invite_page(gw, f"http://{FORGED}")
    code = _code(page)
    assert FORGED not in page
    assert "enroll=" not in page and "<svg" not in page
    assert 'id="no-link"' in page
    status, _ = await gw.call("POST", "/auth/enroll", json={"code": code, "device": "d"})
    assert status == 201


async def test_with_public_url_the_link_and_qr_use_it(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(public_url="http://sync.example.org/")
    page = await _invite_page(gw, "http://sync.example.org")
    code = _code(page)
    assert FORGED not in page
    assert f'href="http://sync.example.org/demo/#enroll={code}"' in page
    assert "<svg" in page
