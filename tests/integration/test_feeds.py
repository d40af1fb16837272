"""Live feeds: heartbeats stream through as they come, a client that leaves ends the upstream
request, a revoked device loses its feeds at once, and an upstream that fails mid-stream cuts the
client off rather than ending the body cleanly.

Real servers won't stall or drop a connection on demand, so two tests put a small interposer in
front of the real upstream that does just that for requests marked ``couchgate_test=...`` and
forwards everything else unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.harness import GatewayHarness, MakeGateway, start_gateway, stop_gateway
from tests.upstreams import Upstream


async def _feed(gateway: GatewayHarness, device: object, query: str) -> aiohttp.ClientResponse:
    headers = device.headers  # type: ignore[attr-defined]
    return await gateway.session.get(
        f"{gateway.url}/db/notes/_changes?{query}",
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=30),
    )


async def test_heartbeats_pass_through_as_they_come(gateway: GatewayHarness) -> None:
    device = await gateway.new_device()
    await gateway.call("PUT", "/db/notes/", device=device)
    loop = asyncio.get_running_loop()
    started = loop.time()
    resp = await _feed(gateway, device, "feed=continuous&heartbeat=200&since=now")
    arrivals: list[float] = []
    try:
        assert resp.status == 200
        while len(arrivals) < 4:
            chunk = await asyncio.wait_for(resp.content.readany(), timeout=5)
            assert chunk.strip() == b"", chunk
            arrivals.append(loop.time() - started)
        # A change written meanwhile arrives on the same open feed.
        await gateway.call("PUT", "/db/notes/fresh", device=device, json={"v": 1})
        line = b""
        while b"fresh" not in line:
            line += await asyncio.wait_for(resp.content.readany(), timeout=5)
    finally:
        resp.close()
    # The heartbeats came as they were sent, spread over time, not all at once from a buffer.
    assert arrivals[-1] - arrivals[0] >= 0.3, arrivals


@pytest.mark.parametrize(
    "query",
    [
        "feed=continuous&heartbeat=500&since=now",
        # CouchDB's other spellings of a live feed: the same rules must apply to them.
        "feed=live&heartbeat=500&since=now",
        "Feed=continuous&heartbeat=500&since=now",
    ],
)
async def test_a_revoked_device_loses_its_open_feed(gateway: GatewayHarness, query: str) -> None:
    device = await gateway.new_device()
    other = await gateway.new_device(same_user_as=device)
    await gateway.call("PUT", "/db/notes/", device=device)
    resp = await _feed(gateway, device, query)
    try:
        assert resp.status == 200
        await asyncio.wait_for(resp.content.readany(), timeout=5)  # the feed is open
        assert (await gateway.call("DELETE", f"/auth/devices/{device.device}", device=other))[
            0
        ] == 200
        rest = await asyncio.wait_for(resp.content.read(), timeout=10)  # EOF, not a time-out
        assert rest.strip() == b""
    finally:
        resp.close()
    assert (await _feed(gateway, device, "feed=normal")).status == 401


async def test_a_revocation_through_another_replica_ends_the_feed_too(
    make_gateway: MakeGateway,
) -> None:
    first = await make_gateway()
    second = await make_gateway(records_db=first.settings.records_db)
    device = await first.new_device()
    other = await first.new_device(same_user_as=device)
    await first.call("PUT", "/db/notes/", device=device)
    resp = await _feed(first, device, "feed=continuous&heartbeat=500&since=now")
    try:
        await asyncio.wait_for(resp.content.readany(), timeout=5)
        assert (await second.call("DELETE", f"/auth/devices/{device.device}", device=other))[
            0
        ] == 200
        await asyncio.wait_for(resp.content.read(), timeout=15)
    finally:
        resp.close()


class Interposer:
    """Forwards to the real upstream, except for feeds marked to stall or to drop mid-stream."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.stall_opened = asyncio.Event()
        self.stall_closed = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self.session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        marker = request.query.get("couchgate_test")
        if marker == "stall":
            return await self._stall(request)
        if marker == "drop":
            resp = web.StreamResponse()
            await resp.prepare(request)
            await resp.write(b'{"results":[{"seq":1,"id":"half')
            assert request.transport is not None
            request.transport.close()
            return resp
        assert self.session is not None
        async with self.session.request(
            request.method,
            self.upstream.url + request.raw_path,
            headers={
                k: v
                for k, v in request.headers.items()
                if k.lower() not in ("host", "content-length")
            },
            data=await request.read(),
        ) as up:
            body = await up.read()
            headers = {
                k: v
                for k, v in up.headers.items()
                if k.lower()
                not in (
                    "content-length",
                    "transfer-encoding",
                    "content-encoding",
                    "connection",
                    "keep-alive",
                )
            }
            return web.Response(status=up.status, body=body, headers=headers)

    async def _stall(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        self.stall_opened.set()
        try:
            while True:
                await resp.write(b"\n")
                await asyncio.sleep(0.1)
        except (asyncio.CancelledError, ConnectionError):
            self.stall_closed.set()
            raise


@pytest.fixture
async def interposed(upstream: Upstream) -> AsyncIterator[tuple[Interposer, GatewayHarness]]:
    interposer = Interposer(upstream)
    interposer.session = aiohttp.ClientSession(auto_decompress=False)
    server = TestServer(interposer.app, host="127.0.0.1", handler_cancellation=True)
    await server.start_server()
    gateway = await start_gateway(upstream, upstream_url=str(server.make_url("")).rstrip("/"))
    try:
        yield interposer, gateway
    finally:
        # The gateway first: its own long-polls through the interposer end with it.
        await stop_gateway(gateway)
        await interposer.session.close()
        await server.close()


async def test_a_client_that_hangs_up_ends_the_upstream_request(
    interposed: tuple[Interposer, GatewayHarness],
) -> None:
    interposer, gateway = interposed
    device = await gateway.new_device()
    await gateway.call("PUT", "/db/notes/", device=device)
    resp = await _feed(gateway, device, "feed=continuous&couchgate_test=stall")
    await asyncio.wait_for(interposer.stall_opened.wait(), timeout=5)
    await asyncio.wait_for(resp.content.readany(), timeout=5)
    assert not interposer.stall_closed.is_set()
    resp.close()  # the client goes away
    await asyncio.wait_for(interposer.stall_closed.wait(), timeout=5)


async def test_an_upstream_failing_mid_stream_cuts_the_client_off(
    interposed: tuple[Interposer, GatewayHarness],
) -> None:
    _, gateway = interposed
    device = await gateway.new_device()
    await gateway.call("PUT", "/db/notes/", device=device)
    resp = await _feed(gateway, device, "feed=continuous&couchgate_test=drop")
    try:
        with pytest.raises(aiohttp.ClientPayloadError):
            await asyncio.wait_for(resp.content.read(), timeout=10)
    finally:
        resp.close()
