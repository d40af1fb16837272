"""What one client can hold open (issue 9, finding 5): devices and feeds per user, a process-wide
budget derived from the open-file limit that answers a clean 503 before the process runs out,
and connections that send nothing, or headers or a body too slowly, closed."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

from tests.harness import Device, GatewayHarness, MakeGateway
from tests.rawhttp import exchange, status_of
from tests.served import Server, start_serve
from tests.upstreams import free_port

LIVE = "/db/{app}/_changes?feed=continuous&heartbeat=1000&since=now"
# Generous bounds for what must happen "soon" with a one-second idle timeout; never compared
# with how long it took.
CLOSED_WITHIN_S = 20


@contextlib.asynccontextmanager
async def open_feed(gw: GatewayHarness, device: Device, app: str) -> AsyncIterator[int]:
    """Open one live feed and hold it for the block; yields its status."""
    response = await gw.session.get(gw.url + LIVE.format(app=app), headers=device.headers)
    try:
        if response.status == 200:
            await asyncio.wait_for(response.content.readany(), timeout=10)
        yield response.status
    finally:
        response.close()


async def feed_answer(gw: GatewayHarness, device: Device, app: str) -> tuple[int, object, str]:
    async with gw.session.get(gw.url + LIVE.format(app=app), headers=device.headers) as r:
        assert r.status != 200, "a feed past the limit was opened"
        return r.status, await r.json(), r.headers.get("Retry-After", "")


async def test_devices_per_user_are_bounded(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(devices_per_user=3)
    first = await gw.new_device()
    second = await gw.new_device(same_user_as=first)
    await gw.new_device(same_user_as=first)
    status, link = await gw.call("POST", "/auth/link", device=first)
    assert status == 201
    answer = await gw.call("POST", "/auth/link/redeem", json={"code": link["code"], "device": "x"})
    assert answer == (
        403,
        {
            "error": "forbidden",
            "reason": "device limit reached: an account may have 3 devices; revoke one",
        },
    )
    await gw.revoke(second)
    await gw.new_device(same_user_as=first)  # room again
    assert (await gw.call("GET", "/auth/devices", device=first))[1].__len__() == 3


async def test_live_feeds_are_bounded_per_user_over_all_devices(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(feeds_per_device=2, feeds_per_user=3)
    phone = await gw.new_device()
    laptop = await gw.new_device(same_user_as=phone)
    stranger = await gw.new_device()
    for device in (phone, stranger):
        assert (await gw.call("PUT", "/db/notes", device=device))[0] == 201
    async with (
        open_feed(gw, phone, "notes") as a,
        open_feed(gw, phone, "notes") as b,
        open_feed(gw, laptop, "notes") as c,
    ):
        assert (a, b, c) == (200, 200, 200)
        status, body, retry = await feed_answer(gw, laptop, "notes")
        assert (status, body) == (
            429,
            {
                "error": "too_many_requests",
                "reason": "more than 3 live feeds open for this account",
            },
        )
        assert int(retry) >= 1
        async with open_feed(gw, stranger, "notes") as other:
            assert other == 200  # another user's budget is their own
    await asyncio.sleep(0.2)  # the gateway notices the closed feeds
    async with open_feed(gw, laptop, "notes") as again:
        assert again == 200


async def test_the_process_wide_feed_budget_answers_a_clean_503(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(max_live_feeds=2)
    one, two = await gw.new_device(), await gw.new_device()
    for device in (one, two):
        assert (await gw.call("PUT", "/db/notes", device=device))[0] == 201
    async with open_feed(gw, one, "notes") as a, open_feed(gw, two, "notes") as b:
        assert (a, b) == (200, 200)
        status, body, retry = await feed_answer(gw, one, "notes")
        assert status == 503
        assert body == {
            "error": "service_unavailable",
            "reason": "the server holds as many live feeds as it can; retry shortly",
        }
        assert int(retry) >= 1
        # Everything that is not a feed goes on.
        assert (await gw.call("GET", "/healthz"))[0] == 200
        assert (await gw.call("GET", "/db/notes/", device=one))[0] == 200


async def closed_by_server(
    port: int, send: Callable[[asyncio.StreamWriter], Coroutine[Any, Any, None]]
) -> bytes:
    """Connect, run ``send``, and wait (boundedly) for the server to close; what it answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sender = asyncio.create_task(send(writer))
    try:
        async with asyncio.timeout(CLOSED_WITHIN_S):
            answer = await reader.read()  # until the server closes
        return answer
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_idle_connections_and_slow_requests_are_closed(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(idle_timeout=1)
    port = gw.server.port or 0

    async def nothing(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    async def trickle_headers(writer: asyncio.StreamWriter) -> None:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n")
        while True:
            writer.write(b"X")
            await writer.drain()
            await asyncio.sleep(0.2)

    async def stall_body(writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"POST /auth/code HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"email":'
        )
        await writer.drain()
        await asyncio.sleep(3600)

    async def trickle_body(writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"POST /auth/code HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            b"Content-Length: 3000\r\n\r\n"
        )
        # Slow but steady is progress: the body arrives whole, and is read (and refused).
        for _ in range(30):
            writer.write(b" " * 100)
            await writer.drain()
            await asyncio.sleep(0.1)
        await asyncio.sleep(3600)

    assert await closed_by_server(port, nothing) == b""
    assert status_of(await closed_by_server(port, trickle_headers)) is None
    answer = await closed_by_server(port, stall_body)
    assert status_of(answer) == 408, answer
    assert answer.endswith(
        b'{"error": "request_timeout", "reason": "the request body stopped arriving"}'
    ), answer
    assert status_of(await closed_by_server(port, trickle_body)) == 400
    # A connection that keeps asking is not idle.
    answer = await exchange(
        port, b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n" * 3, timeout=CLOSED_WITHIN_S
    )
    assert answer.count(b"HTTP/1.1 200") == 3


def test_the_soft_open_file_limit_is_raised_to_the_hard_one() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(256, hard)
    script = (
        "import resource\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({low}, {hard}))\n"
        "from gateway.limits.connections import raise_fd_limit\n"
        "print(raise_fd_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    expected = hard if hard != resource.RLIM_INFINITY else low
    assert out.stdout.split() == [str(expected), str(expected)]


class LowLimitServer(Server):
    """``couchgate serve`` under a hard open-file limit of 256, with no per-device or per-user
    feed limit: only the process-wide budget stands between its clients and exhaustion."""

    @property
    def env(self) -> dict[str, str]:
        return {
            **super().env,
            "COUCHGATE_FEEDS_PER_DEVICE": "0",
            "COUCHGATE_FEEDS_PER_USER": "0",
        }

    async def start(self) -> None:
        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

        self.proc = await start_serve(self.port, self.env, self.log, preexec_fn=limit)


async def test_many_feeds_meet_a_clean_503_and_the_process_keeps_answering(
    tmp_path: Path,
) -> None:
    """The issue's scenario at a 256-descriptor limit: 150 live feeds (≈450 descriptors) from
    one device. Some are refused with a CouchDB-shaped 503; the process answers throughout."""
    server = LowLimitServer(tmp_path / "data", free_port())
    await server.start()
    timeout = aiohttp.ClientTimeout(total=15)
    held: list[aiohttp.ClientResponse] = []
    try:
        device = await server.enroll()
        headers = {"Authorization": f"Bearer {device.token}"}
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            async with session.put(device.db_url("notes"), headers=headers) as r:
                assert r.status == 201
            url = device.db_url("notes") + "/_changes?feed=continuous&heartbeat=1000&since=now"
            refused: list[tuple[int, dict[str, Any]]] = []
            for _ in range(150):
                response = await session.get(url, headers=headers)
                if response.status == 200:
                    held.append(response)
                else:
                    refused.append((response.status, await response.json()))
                    response.close()
            assert held, "no feed was opened at all"
            assert refused, "150 feeds fit in 256 descriptors?"
            assert {status for status, _ in refused} == {503}
            assert all(body["error"] == "service_unavailable" for _, body in refused)
            async with session.get(server.url + "/healthz") as r:
                assert r.status == 200
            async with session.get(device.db_url("notes") + "/", headers=headers) as r:
                assert r.status == 200
            for response in held:
                response.close()
            held.clear()
            await asyncio.sleep(0.5)  # the feeds' descriptors are freed
            again = await session.get(url, headers=headers)
            assert again.status == 200
            again.close()
    finally:
        for response in held:
            response.close()
        await server.terminate()
