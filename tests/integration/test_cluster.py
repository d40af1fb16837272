"""Past one machine: a three-node Apache CouchDB cluster with two couchgate replicas in front of
it, each talking to a different node, as docs/deploy.md describes a larger deployment.

Shown here: devices on different replicas live-sync one database; sign-in attempts, revocation
(feeds on the other replica end), quotas and apps-per-user hold across replicas; a node that
stops mid-sync does not stop replication or lose anything acknowledged, and catches up when it
is back. The cluster is started with ``couchdb-test-server --nodes 3`` (``tests/upstreams.py``);
where there is none these tests skip (CI fails instead), and their one-node twins run
everywhere: the replica tests of ``test_auth.py`` and ``test_limits.py`` and the live-sync and
revocation tests of ``test_pouchdb_replication.py``.
"""

from __future__ import annotations

import asyncio
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest

from gateway.auth.records.challenges import MAX_ATTEMPTS
from tests.conftest import NO_COUCHDB, couchdb_settings
from tests.harness import Device, GatewayHarness, start_gateway, stop_gateway
from tests.integration.test_auth import UNAUTHORIZED_CODE, smtp, smtp_settings
from tests.pouch import SYNC_LIVE_STEPS_OK, PouchSession, device_remote, run_pouch
from tests.upstreams import CouchRelease, Upstream, couchdb_release, couchdb_required
from tests.upstreams import couchdb_test_server as find_couchdb_test_server

__all__ = ["smtp"]  # the SMTP fixture, shared with test_auth.py

pytestmark = [pytest.mark.couchdb, pytest.mark.slow]

APP = "notes"


@pytest.fixture(scope="module")
def cluster() -> Iterator[CouchRelease]:
    if find_couchdb_test_server() is None:
        if couchdb_required():
            pytest.fail("COUCHGATE_REQUIRE_COUCHDB is set but there is no couchdb-test-server")
        pytest.skip(NO_COUCHDB)
    with couchdb_release(nodes=3) as release:
        yield release


class Replicas:
    """Two couchgate processes' worth of gateways on one records database, replica i talking to
    cluster node i."""

    def __init__(self, cluster: CouchRelease) -> None:
        self.cluster = cluster
        self.started: list[GatewayHarness] = []

    async def start(self, **settings: Any) -> tuple[GatewayHarness, GatewayHarness]:
        records_db = f"couchgate-cluster-{secrets.token_hex(6)}"
        pair = []
        for node in self.cluster.nodes[:2]:
            gw = await start_gateway(
                node, records_db=records_db, **couchdb_settings(node, "jwt"), **settings
            )
            self.started.append(gw)
            pair.append(gw)
        return pair[0], pair[1]


@pytest.fixture
async def replicas(cluster: CouchRelease) -> AsyncIterator[Replicas]:
    made = Replicas(cluster)
    yield made
    for gw in made.started:
        await stop_gateway(gw)


def on(gw: GatewayHarness, device: Device) -> Device:
    """The same device, talking to another replica."""
    return replace(device, base_url=gw.url)


async def test_devices_on_two_replicas_live_sync_one_database(replicas: Replicas) -> None:
    one, two = await replicas.start()
    phone = await one.new_device()
    laptop = on(two, await one.new_device(same_user_as=phone))
    await run_pouch("info", remote=device_remote(phone, APP))

    out = await run_pouch(
        "sync-live",
        timeout=90,
        timeout_ms=15_000,
        remote_a=device_remote(phone, APP),
        remote_b=device_remote(laptop, APP),
    )
    result = out["result"]
    assert [(s["name"], s["ok"]) for s in result["steps"]] == SYNC_LIVE_STEPS_OK, result
    assert result["docs"]["a"] == result["docs"]["b"]
    # What replica two wrote through node two is what node one serves.
    status, doc = await one.call("GET", f"/db/{APP}/from-b", device=phone)
    assert (status, doc["_rev"]) == (200, result["docs"]["a"][0]["_rev"])


async def test_sign_in_attempts_are_limited_across_replicas(replicas: Replicas, smtp: Any) -> None:
    inbox, port = smtp
    one, two = await replicas.start(**smtp_settings(port))
    status, body = await one.call("POST", "/auth/code", json={"email": "mallory@example.org"})
    assert status == 202, body
    code = await inbox.code_for("mallory@example.org")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for i in range(MAX_ATTEMPTS):
        gw = one if i % 2 else two
        attempt = {"challenge": body["challenge"], "code": wrong, "device": "d"}
        assert (await gw.call("POST", "/auth/token", json=attempt))[0] == 401
    right = {"challenge": body["challenge"], "code": code, "device": "d"}
    assert await two.call("POST", "/auth/token", json=right) == (401, UNAUTHORIZED_CODE)
    assert await one.call("POST", "/auth/token", json=right) == (401, UNAUTHORIZED_CODE)


async def test_a_revocation_on_one_replica_ends_feeds_on_the_other(replicas: Replicas) -> None:
    one, two = await replicas.start()
    phone = await one.new_device()
    laptop = on(two, await one.new_device(same_user_as=phone))
    await run_pouch("info", remote=device_remote(phone, APP))

    async with await PouchSession.start(
        "revoke-live",
        timeout_ms=10_000,
        settle_ms=3_000,
        remote_a=device_remote(phone, APP),
        remote_b=device_remote(laptop, APP),
    ) as session:
        await session.wait_for("ready")
        await one.revoke(on(one, laptop))
        await session.send({"go": True})
        out = await session.result(timeout=90)
    result = out["result"]
    assert result["pushed_by_a"] is True
    assert result["b_has_after"] is False
    assert "after" not in result["feed"]["ids"]
    feed_end = result["feed"]["error"]
    assert feed_end is not None, result["feed"]
    assert (feed_end.get("status"), feed_end.get("name")) == (401, "unauthorized"), feed_end
    status, body = await two.call("GET", f"/db/{APP}/", device=laptop)
    assert (status, body) == (401, {"error": "unauthorized", "reason": "invalid or revoked token"})


async def test_apps_per_user_and_quotas_hold_across_replicas(replicas: Replicas) -> None:
    one, two = await replicas.start(apps_per_user=2, quota_docs=4)
    phone = await one.new_device()
    laptop = on(two, await one.new_device(same_user_as=phone))
    assert (await one.call("PUT", "/db/first/", device=phone))[0] == 201
    assert (await two.call("PUT", "/db/second/", device=laptop))[0] == 201
    assert await one.call("PUT", "/db/third/", device=phone) == (
        403,
        {"error": "forbidden", "reason": "app limit reached: an account may have 2 apps"},
    )
    assert (await two.call("PUT", "/db/third/", device=laptop))[0] == 403

    docs = [{"_id": f"d{i}", "n": i} for i in range(2)]
    assert (await one.call("POST", "/db/first/_bulk_docs", device=phone, json={"docs": docs}))[
        0
    ] == 201
    more = [{"_id": f"e{i}", "n": i} for i in range(2)]
    assert (await two.call("POST", "/db/first/_bulk_docs", device=laptop, json={"docs": more}))[
        0
    ] == 201
    # A cluster's database info counts one copy of each shard range, which may not have every
    # write of the last moment yet: the quota holds once the copies agree (docs/deploy.md).
    # Each read may pick other copies, so they agree when many reads in a row say 4.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    agreeing = 0
    while agreeing < 20:
        counted = (await one.call("GET", "/db/first", device=phone))[1]["doc_count"]
        agreeing = agreeing + 1 if counted == 4 else 0
        assert loop.time() < deadline, "the cluster's copies never agreed on 4 documents"
        await asyncio.sleep(0.05)
    refused = {
        "id": "f0",
        "error": "forbidden",
        "reason": "document quota reached: 4 documents; this one would be one more",
    }
    last = {"docs": [{"_id": "f0"}]}
    assert await one.call("POST", "/db/first/_bulk_docs", device=phone, json=last) == (
        201,
        [refused],
    )
    assert await two.call("POST", "/db/first/_bulk_docs", device=laptop, json=last) == (
        201,
        [refused],
    )


def _admin_get(node: Upstream, path: str) -> Any:
    status, body = node.request("GET", path)
    assert status == 200, body
    return body


async def test_a_node_stopped_mid_sync_loses_nothing_and_catches_up(
    cluster: CouchRelease, replicas: Replicas
) -> None:
    one, two = await replicas.start()
    phone = await one.new_device()
    laptop = on(two, await one.new_device(same_user_as=phone))
    await run_pouch("info", remote=device_remote(phone, APP))
    docs = [{"_id": f"doc-{i:05d}", "n": i, "text": "x" * 200} for i in range(3000)]

    push = asyncio.create_task(
        run_pouch("push", timeout=240, remote=device_remote(phone, APP), docs=docs, batch_size=100)
    )
    # Node three holds a copy of every shard (q=2, n=3); it goes away while the push runs.
    await asyncio.sleep(1.0)
    assert not push.done(), "the push ended before the node could be stopped: use more docs"
    await asyncio.to_thread(cluster.stop_node, 2)
    pushed = await push
    assert pushed["ok"], pushed
    assert pushed["result"]["replication"]["docs_written"] == len(docs)

    # Everything acknowledged is there, read through the other replica and node.
    pulled = await run_pouch("pull", timeout=240, remote=device_remote(laptop, APP))
    assert sorted(doc["_id"] for doc in pulled["result"]["docs"]) == [d["_id"] for d in docs]

    # Node three comes back and catches up by CouchDB's internal replication: its own shard
    # copies (asked of node one, which reads node three's files) hold every document.
    await asyncio.to_thread(cluster.start_node, 2)
    db = one.upstream_db(phone, APP)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while True:
        counts = await asyncio.to_thread(_shard_copy_counts, cluster, 2, db)
        if sum(counts) == len(docs):
            break
        assert loop.time() < deadline, f"node three did not catch up: {counts}"
        await asyncio.sleep(1)


def _shard_copy_counts(cluster: CouchRelease, index: int, db: str) -> list[int]:
    """Documents in each shard copy of ``db`` kept by node ``index``, read from that node's own
    shard files rather than through the cluster's quorum."""
    first = cluster.nodes[0]
    node = cluster.node_name(index)
    suffix = "".join(chr(c) for c in _admin_get(first, f"/_node/_local/_dbs/{db}")["shard_suffix"])
    counts = []
    for shard_range, owners in _admin_get(first, f"/{db}/_shards")["shards"].items():
        if node in owners:
            shard = urllib.parse.quote(f"shards/{shard_range}/{db}{suffix}", safe="")
            counts.append(int(_admin_get(first, f"/_node/{node}/{shard}")["doc_count"]))
    return counts
