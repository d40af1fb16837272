"""The one place failures become CouchDB-shaped answers: an upstream that does not answer in
time is an outage (503), never an internal error (500)."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.web.middlewares import error_middleware


async def _answer_of(failure: BaseException) -> tuple[int, object]:
    async def handler(_: web.Request) -> web.Response:
        raise failure

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/", handler)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/")
        return response.status, await response.json()


async def test_an_upstream_call_past_its_timeout_is_a_503() -> None:
    assert await _answer_of(TimeoutError()) == (
        503,
        {"error": "service_unavailable", "reason": "the database is not reachable"},
    )


async def test_a_broken_upstream_connection_is_a_503_too() -> None:
    status, _ = await _answer_of(aiohttp.ClientConnectionError())
    assert status == 503


async def test_a_bug_is_a_500_that_says_nothing() -> None:
    assert await _answer_of(KeyError("secret")) == (
        500,
        {"error": "unknown_error", "reason": "internal error"},
    )
