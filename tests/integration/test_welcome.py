"""``GET /`` answers a page to a browser and CouchDB's JSON welcome to everything else."""

from __future__ import annotations

import json

import aiohttp
import pytest

from gateway import __version__
from tests.harness import GatewayHarness

CHROMIUM_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
FIREFOX_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


async def _get(gw: GatewayHarness, headers: dict[str, str]) -> tuple[aiohttp.ClientResponse, str]:
    async with (
        aiohttp.ClientSession(skip_auto_headers=["Accept"]) as session,
        session.get(gw.url + "/", headers=headers) as resp,
    ):
        return resp, await resp.text()


@pytest.mark.parametrize("accept", [CHROMIUM_ACCEPT, FIREFOX_ACCEPT])
async def test_a_browser_gets_the_page(gateway: GatewayHarness, accept: str) -> None:
    resp, page = await _get(gateway, {"Accept": accept, "Host": "evil.example"})
    assert resp.status == 200
    assert resp.content_type == "text/html"
    for link in ('href="/demo/"', 'href="/account"', 'href="/admin/"'):
        assert link in page
    assert f"version {__version__}" in page
    assert "/db/notes" in page and "PouchDB" in page
    assert "evil.example" not in page
    assert "script-src" not in resp.headers["Content-Security-Policy"]
    assert "Accept" in resp.headers["Vary"]


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "application/json",
        "*/*",
        "application/json, text/plain, */*",
        "text/plain",
        "text/html, application/json",
    ],
)
async def test_everything_else_gets_the_json_welcome(
    gateway: GatewayHarness, accept: str | None
) -> None:
    resp, text = await _get(gateway, {} if accept is None else {"Accept": accept})
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert resp.headers["Vary"] == "Accept"

    assert json.loads(text) == {"couchgate": "Welcome", "version": __version__}
