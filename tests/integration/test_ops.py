"""Probes, metrics and logs of a running gateway, after real traffic, on both upstreams."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

from gateway import keys
from gateway.ops.logs import JsonFormatter
from tests.harness import GatewayHarness, MakeGateway, start_gateway, stop_gateway
from tests.pouch import device_remote, run_pouch
from tests.upstreams import Upstream, free_port

METRICS_TOKEN = "metrics-token-0123456789abcdef"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def total(
    parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in parsed.items() if n == name and wanted <= ls)


async def test_healthz_and_readyz_answer_when_all_is_well(gateway: GatewayHarness) -> None:
    assert await gateway.call("GET", "/healthz") == (200, {"ok": True})
    assert await gateway.call("GET", "/readyz") == (200, {"ok": True})


async def test_a_gateway_whose_upstream_is_down_starts_and_says_it_is_not_ready() -> None:
    dead = Upstream("couchdb", f"http://127.0.0.1:{free_port()}", "admin", "secret-password")
    gw = await start_gateway(dead)
    try:
        assert await gw.call("GET", "/healthz") == (200, {"ok": True})
        assert await gw.call("GET", "/readyz") == (
            503,
            {"error": "service_unavailable", "reason": "couchgate is waiting for the database"},
        )
        # Everything else is a retryable 503 until the upstream is there.
        assert await gw.call("POST", "/auth/enroll", json={"code": "x", "device": "d"}) == (
            503,
            {
                "error": "service_unavailable",
                "reason": "couchgate is starting: the database is not reachable yet",
            },
        )
        status, _ = await gw.call("GET", "/db/notes/")
        assert status == 503
    finally:
        await stop_gateway(gw)


async def test_readiness_follows_the_upstream_going_away(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    assert (await gw.call("GET", "/readyz"))[0] == 200
    # Point the live gateway's pool at a port nobody listens on: what an outage looks like.
    backend = gw.app[keys.BACKEND]
    real = backend.url
    backend.url = URL(f"http://127.0.0.1:{free_port()}")
    try:
        assert await gw.call("GET", "/readyz") == (
            503,
            {"error": "service_unavailable", "reason": "the database is not reachable"},
        )
        assert (await gw.call("GET", "/healthz"))[0] == 200
    finally:
        backend.url = real
    assert (await gw.call("GET", "/readyz"))[0] == 200


async def test_metrics_after_real_traffic(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(metrics_token=METRICS_TOKEN)
    device = await gw.new_device()
    await gw.call("POST", "/auth/enroll", json={"code": "wrong-code", "device": "x"})
    pushed = await run_pouch(
        "push",
        remote=device_remote(device, "notes"),
        docs=[{"_id": f"d{i}", "n": i} for i in range(20)],
    )
    assert pushed["result"]["replication"]["docs_written"] == 20
    # One live feed, open while metrics are read.
    feed = asyncio.ensure_future(
        gw.call("GET", "/db/notes/_changes?feed=longpoll&since=now&timeout=20000", device=device)
    )
    for _ in range(100):
        if len(gw.app[keys.FEEDS]):
            break
        await asyncio.sleep(0.05)
    auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    status, text = await gw.call("GET", "/metrics", headers=auth)
    assert status == 200, text
    feed.cancel()
    parsed = samples(text)

    assert total(parsed, "couchgate_live_feeds") == 1
    assert (
        total(
            parsed,
            "couchgate_requests_total",
            route="endpoint_bulk_docs",
            method="POST",
            status="201",
        )
        >= 1
    )
    assert total(parsed, "couchgate_requests_total", route="endpoint_revs_diff") >= 1
    assert (
        total(parsed, "couchgate_request_duration_seconds_count", route="endpoint_bulk_docs") >= 1
    )
    assert total(parsed, "couchgate_request_bytes_total", route="endpoint_bulk_docs") > 20 * 10
    assert total(parsed, "couchgate_response_bytes_total", route="endpoint_bulk_docs") > 0
    assert total(parsed, "couchgate_sign_in_attempts_total", step="enroll") == 2
    assert total(parsed, "couchgate_sign_in_failures_total", step="enroll") == 1
    assert total(parsed, "couchgate_upstream_duration_seconds_count") > 0
    assert total(parsed, "couchgate_upstream_errors_total") == 0
    # Labels are route classes: no document id anywhere.
    assert not re.search(r"\bd1[0-9]?\b", text)


async def test_metrics_are_restricted(make_gateway: MakeGateway) -> None:
    local_only = await make_gateway()
    assert (await local_only.call("GET", "/metrics"))[0] == 200  # the test runs on loopback
    status, body = await local_only.call(
        "GET", "/metrics", headers={"X-Forwarded-For": "203.0.113.7"}
    )
    assert (status, body["error"]) == (403, "forbidden")

    with_token = await make_gateway(metrics_token=METRICS_TOKEN)
    assert (await with_token.call("GET", "/metrics"))[0] == 401
    wrong = {"Authorization": "Bearer " + "x" * len(METRICS_TOKEN)}
    assert (await with_token.call("GET", "/metrics", headers=wrong))[0] == 401
    right = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert (await with_token.call("GET", "/metrics", headers=right))[0] == 200


async def test_no_token_code_or_address_reaches_a_log_line(
    make_gateway: MakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gw = await make_gateway()
    address = "secret.person@example.org"
    _, code = await gw.enrollment_code(address)
    status, signed_in = await gw.call("POST", "/auth/enroll", json={"code": code, "device": "p"})
    assert status == 201
    token = signed_in["token"]
    headers = {"Authorization": f"Bearer {token}"}
    await gw.call("PUT", "/db/private/", headers=headers)
    await gw.call(
        "PUT", "/db/private/secret-doc-id", headers=headers, json={"body": "plaintext-body-words"}
    )
    await gw.call("GET", "/db/private/secret-doc-id", headers=headers)
    await gw.call("POST", "/auth/code", json={"email": address})
    await gw.call("POST", "/auth/enroll", json={"code": code, "device": "again"})  # used: 401

    lines = [r.getMessage() for r in caplog.records]
    lines += [JsonFormatter().format(r) for r in caplog.records]
    assert any("/db/{tail:.*}" in line or " doc " in line for line in lines), lines[:20]
    for secret in (token, code, address, "secret-doc-id", "plaintext-body-words"):
        assert not any(secret in line for line in lines), secret


def test_json_log_lines_carry_the_access_fields() -> None:
    record = logging.LogRecord(
        "aiohttp.access",
        logging.INFO,
        __file__,
        1,
        "%(method)s %(route)s",
        ({"method": "GET", "route": "doc"},),
        None,
    )
    record.__dict__.update(method="GET", route="doc", status=200)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "GET doc"
    assert (line["method"], line["route"], line["status"], line["level"]) == (
        "GET",
        "doc",
        200,
        "INFO",
    )
