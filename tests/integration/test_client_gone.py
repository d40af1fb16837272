"""A client that hangs up is neither an upstream failure in the logs nor a 503 in the metrics
(issue 11): it is counted as 499, nginx's "client closed request"."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import traceback
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from gateway import keys
from gateway.app import RUNNER_OPTIONS, create_app
from gateway.ops.metrics import METRICS
from tests.harness import Device, GatewayHarness, GatewayTarget, gateway_settings, stop_gateway
from tests.upstreams import Upstream

SIZE = 8 * 1024 * 1024
ROUNDS = 3


class WithoutCancellation(TestServer):
    """aiohttp's default runner (gunicorn's worker runs so): a handler is not cancelled when its
    client leaves, it finds out when it next reads or writes."""

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        return await super()._make_runner(**{**kwargs, "handler_cancellation": False})


@pytest.fixture(params=[True, False], ids=["cancelling", "not-cancelling"])
async def gateway(
    request: pytest.FixtureRequest, gateway_upstream: GatewayTarget
) -> AsyncIterator[GatewayHarness]:
    """The gateway under both runners: cancelling handlers (couchgate serve) or not."""
    settings = gateway_settings(gateway_upstream.upstream, **gateway_upstream.settings)
    server_class = TestServer if request.param else WithoutCancellation
    server = server_class(create_app(settings), host="127.0.0.1")
    await server.start_server(
        **{k: v for k, v in RUNNER_OPTIONS.items() if k != "handler_cancellation"}
    )
    effective = server.app[keys.BACKEND].settings
    assert effective.upstream_url is not None
    seen = Upstream(
        "seen", effective.upstream_url, effective.upstream_user, effective.upstream_password
    )
    harness = GatewayHarness(server, seen, settings)
    try:
        yield harness
    finally:
        await stop_gateway(harness)


def gateway_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Warnings and errors logged about the gateway's requests. The embedded store's own
    server, which the gateway's departure reaches as a closed connection too, is not on trial
    here (its continuous feed's last write to a closing transport is aiohttp's ERROR)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and not _raised_in_store(r)
    ]


def _raised_in_store(record: logging.LogRecord) -> bool:
    if record.exc_info is None or record.exc_info[0] is None:
        return False
    return "couchlite/" in "".join(traceback.format_exception(*record.exc_info))


def counted(gateway: GatewayHarness, status: str) -> float:
    total = 0.0
    for metric in gateway.app[METRICS].registry.collect():
        for sample in metric.samples:
            if sample.name == "couchgate_requests_total" and sample.labels["status"] == status:
                total += sample.value
    return total


async def hang_up_after(gateway: GatewayHarness, request: bytes, read: int) -> None:
    url = URL(gateway.url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(request)
    await writer.drain()
    if read:
        await reader.readexactly(read)
    writer.transport.abort()


async def assert_left_cleanly(
    gateway: GatewayHarness, device: Device, caplog: pytest.LogCaptureFixture, *statuses: str
) -> None:
    """Once every departure is counted (as one of ``statuses``), the gateway still answers, and
    it counted no 503 or 500 and logged no warning."""
    for _ in range(50):
        if sum(counted(gateway, status) for status in statuses) >= ROUNDS:
            break
        await asyncio.sleep(0.1)
    status, _ = await gateway.call("GET", "/db/notes", device=device)
    assert status == 200
    assert counted(gateway, "503") == 0 and counted(gateway, "500") == 0
    assert gateway_warnings(caplog) == []


@pytest.mark.parametrize("read", [0, 64 * 1024])
async def test_a_client_hanging_up_mid_answer_is_not_an_upstream_failure(
    gateway: GatewayHarness, caplog: pytest.LogCaptureFixture, read: int
) -> None:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    status, doc = await gateway.call("PUT", "/db/notes/big", device=device, json={})
    assert status == 201
    async with gateway.session.put(
        f"{device.db_url('notes')}/big/blob?rev={doc['rev']}",
        data=io.BytesIO(os.urandom(SIZE)),
        headers={**device.headers, "Content-Type": "application/octet-stream"},
    ) as r:
        assert r.status == 201
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="gateway")
    request = (
        f"GET /db/notes/big/blob HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {device.token}\r\n\r\n"
    ).encode()
    for _ in range(ROUNDS):
        await hang_up_after(gateway, request, read)
    # The gateway notices each departure while it streams; then it still answers others.
    await assert_left_cleanly(gateway, device, caplog, "499")


@pytest.mark.parametrize("path", ["/db/notes/up/blob", "/db/notes/doc", "/db/notes/_bulk_docs"])
async def test_a_client_hanging_up_mid_upload_is_not_an_upstream_failure(
    gateway: GatewayHarness, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="gateway")
    method = "POST" if path.endswith("_bulk_docs") else "PUT"
    kind = "application/octet-stream" if path.endswith("blob") else "application/json"
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {device.token}\r\n"
        f"Content-Type: {kind}\r\nContent-Length: {SIZE}\r\n\r\n"
    ).encode()
    for _ in range(ROUNDS):
        await hang_up_after(gateway, head + b'{"docs": [' + b" " * 1024 * 1024, 0)
    await assert_left_cleanly(gateway, device, caplog, "499")


@pytest.mark.parametrize(
    "query", ["feed=longpoll&since=now", "feed=continuous&since=now&heartbeat=50"]
)
async def test_a_client_leaving_a_feed_is_not_an_upstream_failure(
    gateway: GatewayHarness, caplog: pytest.LogCaptureFixture, query: str
) -> None:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="gateway")
    url = URL(gateway.url)
    request = (
        f"GET /db/notes/_changes?{query} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {device.token}\r\n\r\n"
    ).encode()
    for _ in range(ROUNDS):
        _, writer = await asyncio.open_connection(url.host, url.port)
        writer.write(request)
        await writer.drain()
        await asyncio.sleep(0.2)  # so that the feed is open upstream when the client leaves
        writer.transport.abort()
    await assert_left_cleanly(gateway, device, caplog, "499", "200")
