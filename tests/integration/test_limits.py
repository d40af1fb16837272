"""Quotas and rate limits through a real gateway: refused with CouchDB-shaped errors, nothing
stored touched, and usable again once the user is back under the limit or has waited."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator

import pytest

from gateway.config_values import ConfigError, env_name
from tests.harness import GatewayTarget, MakeGateway, start_gateway, stop_gateway
from tests.integration.test_cli import _cli, _use_settings_of
from tests.pouch import device_remote, run_pouch
from tests.upstreams import Upstream


def docs(prefix: str, n: int, size: int = 10) -> list[dict[str, object]]:
    return [{"_id": f"{prefix}{i:03d}", "text": "x" * size} for i in range(n)]


def PAST_QUOTA(most: int) -> dict[str, str]:
    return {
        "error": "forbidden",
        "reason": f"document quota reached: {most} documents; this one would be one more",
    }


async def test_a_bulk_write_past_the_document_quota_is_refused_per_document(
    make_gateway: MakeGateway,
) -> None:
    """One ``_bulk_docs`` of 300 under a quota of 20 stores 20 and answers each of the other 280
    as CouchDB answers a refused document; updates of stored documents still pass at the quota,
    and replicated revisions (``new_edits=false``) are counted alike."""
    gw = await make_gateway(quota_docs=20)
    device = await gw.new_device()
    assert (await gw.call("PUT", "/db/notes/", device=device))[0] == 201
    status, rows = await gw.call(
        "POST", "/db/notes/_bulk_docs", device=device, json={"docs": docs("a", 300)}
    )
    assert status == 201, rows
    assert [r.get("ok") for r in rows[:20]] == [True] * 20
    assert rows[20:] == [{"id": f"a{i:03d}", **PAST_QUOTA(20)} for i in range(20, 300)]
    status, info = await gw.call("GET", "/db/notes/", device=device)
    assert (status, info["doc_count"]) == (200, 20)
    # At the quota: an update and a new document in one request; the update is written.
    status, stored = await gw.call("GET", "/db/notes/a000", device=device)
    update = {**stored, "text": "changed"}
    status, rows = await gw.call(
        "POST", "/db/notes/_bulk_docs", device=device, json={"docs": [update, *docs("n", 1)]}
    )
    assert status == 201 and rows[0]["ok"] is True and rows[1] == {"id": "n000", **PAST_QUOTA(20)}
    replicated = [{**d, "_rev": "1-" + "ab" * 16} for d in docs("r", 2)]
    status, rows = await gw.call(
        "POST",
        "/db/notes/_bulk_docs",
        device=device,
        json={"docs": replicated, "new_edits": False},
    )
    assert (status, rows) == (201, [{"id": f"r{i:03d}", **PAST_QUOTA(20)} for i in range(2)])
    status, info = await gw.call("GET", "/db/notes/", device=device)
    assert info["doc_count"] == 20


async def test_document_quota_refuses_writes_and_recovers_after_deletes(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway(quota_docs=5)
    device = await gw.new_device()
    assert (await gw.call("PUT", "/db/notes/", device=device))[0] == 201
    status, _ = await gw.call(
        "POST", "/db/notes/_bulk_docs", device=device, json={"docs": docs("a", 5)}
    )
    assert status == 201
    refused = {
        "error": "forbidden",
        "reason": "document quota reached: 5 of 5 documents; delete some first",
    }
    bulk = {"docs": docs("b", 1)}
    assert await gw.call("POST", "/db/notes/_bulk_docs", device=device, json=bulk) == (
        201,
        [{"id": "b000", **PAST_QUOTA(5)}],
    )
    assert await gw.call("PUT", "/db/notes/b999", device=device, json={"n": 1}) == (403, refused)
    # Nothing stored was touched, and reads go on.
    status, info = await gw.call("GET", "/db/notes/", device=device)
    assert (status, info["doc_count"]) == (200, 5)
    # A real PouchDB push reports each refused document (denied: no retry) and completes.
    pushed = await run_pouch(
        "push", remote=device_remote(device, "notes"), docs=docs("c", 3), check=False
    )
    assert pushed["ok"], pushed
    replication = pushed["result"]["replication"]
    assert (replication["docs_written"], replication["doc_write_failures"]) == (0, 3), pushed

    # DELETE is never refused, and frees room.
    status, doc = await gw.call("GET", "/db/notes/a000", device=device)
    status, _ = await gw.call("DELETE", f"/db/notes/a000?rev={doc['_rev']}", device=device)
    assert status == 200
    assert (await gw.call("PUT", "/db/notes/b000", device=device, json={"n": 1}))[0] == 201


async def test_byte_quota_counts_what_is_stored_and_the_write(
    make_gateway: MakeGateway, gateway_upstream: GatewayTarget
) -> None:
    skip_byte_quotas_on_pouchdb_server(gateway_upstream)
    gw = await make_gateway(app_limits=json.dumps({"photos": {"quota_bytes": 20_000}}))
    device = await gw.new_device()
    for app in ("photos", "notes"):
        assert (await gw.call("PUT", f"/db/{app}/", device=device))[0] == 201
    small = {"docs": docs("p", 10, size=1_000)}
    assert (await gw.call("POST", "/db/photos/_bulk_docs", device=device, json=small))[0] == 201
    big = {"docs": docs("q", 1, size=12_000)}
    status, body = await gw.call("POST", "/db/photos/_bulk_docs", device=device, json=big)
    assert status == 403 and body["error"] == "forbidden"
    assert body["reason"].startswith("storage quota reached: ")
    assert "this write needs" in body["reason"]
    # Another app has no quota of its own and the global one is off.
    assert (await gw.call("POST", "/db/notes/_bulk_docs", device=device, json=big))[0] == 201
    status, info = await gw.call("GET", "/db/photos/", device=device)
    assert info["doc_count"] == 10


async def test_a_quota_cannot_be_passed_with_a_chunked_body_or_checkpoints(
    make_gateway: MakeGateway, gateway_upstream: GatewayTarget
) -> None:
    skip_byte_quotas_on_pouchdb_server(gateway_upstream)
    gw = await make_gateway(app_limits=json.dumps({"photos": {"quota_bytes": 2_000}}))
    device = await gw.new_device()
    assert (await gw.call("PUT", "/db/photos/", device=device))[0] == 201

    async def chunked() -> AsyncIterator[bytes]:
        yield json.dumps({"docs": docs("c", 1, size=300_000)}).encode()

    status, body = await gw.call(
        "POST",
        "/db/photos/_bulk_docs",
        device=device,
        data=chunked(),
        headers={"Content-Type": "application/json"},
    )
    assert (status, body["error"]) == (411, "length_required")
    # Checkpoint documents are for checkpoints: small, and JSON objects.
    status, body = await gw.call(
        "PUT", "/db/photos/_local/stash", device=device, json={"blob": "x" * 100_000}
    )
    assert (status, body["error"]) == (413, "too_large")
    assert (await gw.call("PUT", "/db/photos/_local/cp", device=device, json={"seq": 1}))[0] == 201
    status, info = await gw.call("GET", "/db/photos/", device=device)
    assert info["doc_count"] == 0


async def test_device_request_rate_is_limited_with_retry_after(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(device_requests_per_minute=60)
    device = await gw.new_device()
    other = await gw.new_device()
    # The bucket holds five minutes' worth (BURST_MINUTES), refilled at 60 a minute: 300 at
    # once, plus one for each second the 300 took (a loaded machine takes more than one).
    started = time.monotonic()
    statuses = [(await gw.call("GET", "/auth/me", device=device))[0] for _ in range(300)]
    assert statuses == [200] * 300
    refilled = 0
    while True:
        async with gw.session.get(gw.url + "/auth/me", headers=device.headers) as r:
            if r.status == 200:
                refilled += 1
                assert refilled <= math.ceil(time.monotonic() - started) + 1, "never ran dry"
                continue
            assert r.status == 429
            assert r.headers["Retry-After"] == "1"
            assert await r.json() == {
                "error": "too_many_requests",
                "reason": "more than 60 requests a minute from this device",
            }
            break
    assert (await gw.call("GET", "/auth/me", device=other))[0] == 200  # per device
    await asyncio.sleep(1.1)
    assert (await gw.call("GET", "/auth/me", device=device))[0] == 200


async def test_sign_in_codes_are_limited_per_address_and_failures_per_ip(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway(address_signins_per_hour=2, ip_signins_per_hour=6)
    ask = {"email": "someone@example.org"}
    assert [(await gw.call("POST", "/auth/code", json=ask))[0] for _ in range(2)] == [202, 202]
    async with gw.session.post(gw.url + "/auth/code", json=ask) as r:
        assert (r.status, await r.json()) == (
            429,
            {"error": "too_many_requests", "reason": "too many sign-in codes for this address"},
        )
        assert int(r.headers["Retry-After"]) > 1000  # two an hour: one more in 30 minutes
    other = {"email": "else@example.org"}
    assert (await gw.call("POST", "/auth/code", json=other))[0] == 202
    # 4 of the IP's 6 are used (the refused request counts too); failed redemptions use the
    # rest, then the IP is refused.
    wrong = {"code": "not-a-code", "device": "d"}
    failures = [(await gw.call("POST", "/auth/enroll", json=wrong))[0] for _ in range(2)]
    assert failures == [401, 401]
    status, body = await gw.call("POST", "/auth/enroll", json=wrong)
    assert (status, body["error"]) == (429, "too_many_requests")
    # ... even with a good code, until the window has passed.
    _, code = await gw.enrollment_code()
    assert (await gw.call("POST", "/auth/enroll", json={"code": code, "device": "d"}))[0] == 429


async def test_live_feeds_per_device_and_apps_per_user_are_bounded(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway(feeds_per_device=2, apps_per_user=2)
    device = await gw.new_device()
    for app in ("one", "two"):
        assert (await gw.call("PUT", f"/db/{app}/", device=device))[0] == 201
    status, body = await gw.call("PUT", "/db/three/", device=device)
    assert (status, body) == (
        403,
        {"error": "forbidden", "reason": "app limit reached: an account may have 2 apps"},
    )
    assert (await gw.call("PUT", "/db/one/", device=device))[0] == 412  # its own: still fine

    url = f"{gw.url}/db/one/_changes?feed=continuous&heartbeat=500&since=now"
    feeds = [await gw.session.get(url, headers=device.headers) for _ in range(2)]
    try:
        assert [f.status for f in feeds] == [200, 200]
        for feed in feeds:
            await asyncio.wait_for(feed.content.readany(), timeout=5)
        status, body = await gw.call(
            "GET", "/db/one/_changes?feed=longpoll&since=now", device=device
        )
        assert (status, body["error"]) == (429, "too_many_requests")
    finally:
        for feed in feeds:
            feed.close()
    await asyncio.sleep(0.2)  # the gateway notices the closed feeds
    again = await gw.session.get(url, headers=device.headers)
    try:
        assert again.status == 200
        await asyncio.wait_for(again.content.readany(), timeout=5)
    finally:
        again.close()


async def test_a_byte_quota_is_refused_on_pouchdb_server(
    pouchdb: Upstream, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """pouchdb-server's database info has no sizes, so a byte quota there would never hold: the
    gateway does not start with one, and ``couchgate check`` names it as a problem."""
    with pytest.raises(ConfigError) as refused:
        await start_gateway(pouchdb, app_limits=json.dumps({"photos": {"quota_bytes": 1000}}))
    assert "quota_bytes cannot be held on pouchdb-server" in str(refused.value)
    gw = await start_gateway(pouchdb)
    try:
        _use_settings_of(gw, monkeypatch)
        monkeypatch.setenv(env_name("quota_bytes"), "1000")
        capsys.readouterr()
        assert await _cli("check") != 0
        assert "quota_bytes cannot be held on pouchdb-server" in capsys.readouterr().out
    finally:
        await stop_gateway(gw)


def skip_byte_quotas_on_pouchdb_server(target: GatewayTarget) -> None:
    """The byte quota's tests run where a byte quota can be held (not pouchdb-server, where the
    gateway refuses one: test_a_byte_quota_is_refused_on_pouchdb_server)."""
    if target.upstream is not None and target.upstream.kind == "pouchdb-server":
        pytest.skip("pouchdb-server reports no sizes: a byte quota is refused at start-up")
