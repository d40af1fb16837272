"""The real PouchDB client (Node, tests/js/client.mjs) replicating through couchgate.

Every test signs devices in on a fresh gateway, drives PouchDB 9 against ``/db/<app>`` with the
device token, and checks what both PouchDB and the upstream (peeked at as its admin) end up with.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from typing import Any
from urllib.parse import quote

from couchlite.attachments import couch_digest
from tests.harness import Device, GatewayHarness
from tests.pouch import (
    SYNC_LIVE_STEPS_OK,
    PouchSession,
    device_remote,
    run_pouch,
    unexpected_http_failures,
)

APP = "notes"


async def peek(gateway: GatewayHarness, device: Device, path: str) -> tuple[int, Any]:
    """GET on the device's upstream database as the upstream's admin, off the event loop."""
    db = gateway.upstream_db(device, APP)
    return await asyncio.to_thread(gateway.upstream.request, "GET", f"/{db}{path}")


def assert_clean(output: dict[str, Any]) -> None:
    """No HTTP failures beyond the probes PouchDB always makes (db GET, first checkpoint)."""
    assert unexpected_http_failures(output) == []


def assert_replicated(replication: dict[str, Any], count: int) -> None:
    assert replication["ok"] is True, replication
    assert replication["errors"] == []
    assert replication["doc_write_failures"] == 0
    assert (replication["docs_read"], replication["docs_written"]) == (count, count)


def strip_rev(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "_rev"}


def md5_digest(data: bytes) -> str:
    return "md5-" + base64.b64encode(hashlib.md5(data).digest()).decode()


async def test_push_1000_docs_then_pull_into_a_fresh_db(gateway: GatewayHarness) -> None:
    device = await gateway.new_device()
    docs = [
        {
            "_id": f"note-{i:05d}",
            "n": i,
            "title": f"Note {i} ✓",
            "tags": ["a", str(i % 7)],
            "nested": {"even": i % 2 == 0, "ratio": i / 8},
        }
        for i in range(1200)
    ]

    pushed = await run_pouch("push", remote=device_remote(device, APP), docs=docs)
    assert_replicated(pushed["result"]["replication"], len(docs))
    assert_clean(pushed)

    pulled = await run_pouch("pull", remote=device_remote(device, APP))
    assert_replicated(pulled["result"]["replication"], len(docs))
    assert_clean(pulled)
    assert [strip_rev(doc) for doc in pulled["result"]["docs"]] == docs

    status, upstream_docs = await peek(gateway, device, "/_all_docs?include_docs=true")
    assert status == 200
    assert [strip_rev(row["doc"]) for row in upstream_docs["rows"]] == docs
    assert {row["id"]: row["value"]["rev"] for row in upstream_docs["rows"]} == {
        doc["_id"]: doc["_rev"] for doc in pulled["result"]["docs"]
    }


async def test_live_sync_between_two_devices_of_one_user(gateway: GatewayHarness) -> None:
    phone = await gateway.new_device()
    laptop = await gateway.new_device(same_user_as=phone)
    assert laptop.user == phone.user and laptop.device != phone.device
    # Provisioned first: two devices provisioning at once is test_devices_of_one_user_start_at_once.
    await run_pouch("info", remote=device_remote(phone, APP))

    out = await run_pouch(
        "sync-live",
        timeout=60,
        timeout_ms=10_000,
        remote_a=device_remote(phone, APP),
        remote_b=device_remote(laptop, APP),
    )
    result = out["result"]

    assert [(s["name"], s["ok"]) for s in result["steps"]] == SYNC_LIVE_STEPS_OK, result
    assert all(step["ms"] < 10_000 for step in result["steps"])
    assert result["events"] == []
    assert_clean(out)
    assert [strip_rev(d) for d in result["docs"]["a"]] == [{"_id": "from-b", "v": 2}]
    assert result["docs"]["a"] == result["docs"]["b"]
    status, doc = await peek(gateway, phone, "/from-b")
    assert (status, doc["_rev"], doc["v"]) == (200, result["docs"]["a"][0]["_rev"], 2)


async def test_devices_of_one_user_start_at_once(gateway: GatewayHarness) -> None:
    """Devices of one user replicate for the first time together: each provisions the db."""
    first = await gateway.new_device()
    devices = [first] + [await gateway.new_device(same_user_as=first) for _ in range(3)]
    docs = {
        device.device: [{"_id": f"{device.device}-{i}", "n": i} for i in range(10)]
        for device in devices
    }

    out = await run_pouch(
        "push-together",
        pushes=[
            {"remote": device_remote(device, APP), "docs": docs[device.device]}
            for device in devices
        ],
    )
    for replication in out["result"]["replications"]:
        assert_replicated(replication, 10)
    assert_clean(out)
    status, info = await peek(gateway, first, "/")
    assert (status, info["doc_count"]) == (200, 40)


async def test_offline_edits_on_two_devices_conflict_the_same_way(
    gateway: GatewayHarness,
) -> None:
    phone = await gateway.new_device()
    laptop = await gateway.new_device(same_user_as=phone)

    out = await run_pouch(
        "conflict",
        doc_id="shared",
        remote_a=device_remote(phone, APP),
        remote_b=device_remote(laptop, APP),
    )
    result = out["result"]
    assert_clean(out)

    rev_a, rev_b = result["rev_a"], result["rev_b"]
    assert rev_a != rev_b and rev_a.startswith("2-") and rev_b.startswith("2-")
    # CouchDB's deterministic choice: same generation, so the greater rev hash wins.
    winner, loser = max(rev_a, rev_b), min(rev_a, rev_b)
    seen = result["seen"]
    for side in ("a", "b", "remote"):
        assert seen[side]["_rev"] == winner, (side, seen)
        assert seen[side]["_conflicts"] == [loser], (side, seen)
    assert seen["a"] == seen["b"] == seen["remote"]

    # Then A deleted the losing leaf and both synced again.
    resolved = result["resolved"]
    assert resolved["a"] == resolved["b"] == resolved["remote"]
    assert resolved["a"]["_rev"] == winner and "_conflicts" not in resolved["a"]
    status, upstream_doc = await peek(gateway, phone, "/shared?conflicts=true")
    assert (status, upstream_doc["_rev"], upstream_doc["v"]) == (200, winner, seen["a"]["v"])
    assert "_conflicts" not in upstream_doc
    # Upstream holds both branches: the winner and the deleted loser (one generation on).
    status, changes = await peek(gateway, phone, "/_changes?style=all_docs")
    assert status == 200
    (leaves,) = [
        sorted(c["rev"] for c in row["changes"])
        for row in changes["results"]
        if row["id"] == "shared"
    ]
    assert leaves[0] == winner and leaves[1].startswith("3-"), leaves


async def test_attachments_both_ways(gateway: GatewayHarness) -> None:
    phone = await gateway.new_device()
    laptop = await gateway.new_device(same_user_as=phone)
    blobs = {
        "photo.jpg": ("image/jpeg", os.urandom(300_000)),
        "notes.txt": ("text/plain", "small text, ünïcødé ✓\n".encode()),
    }
    more = {"second part.bin": ("application/octet-stream", os.urandom(120_000))}

    def wire(atts: dict[str, tuple[str, bytes]]) -> dict[str, dict[str, str]]:
        return {
            name: {"content_type": ctype, "data": base64.b64encode(data).decode()}
            for name, (ctype, data) in atts.items()
        }

    def digest(data: bytes, ctype: str, *, remote: bool) -> str:
        # PouchDB digests what it holds; CouchDB (and the embedded store) digest text/* as they
        # store it, gzipped.
        if not remote or gateway.upstream.kind == "pouchdb-server":
            return md5_digest(data)
        return couch_digest(data, ctype)

    def expected(
        atts: dict[str, tuple[str, bytes]], *, remote: bool = False
    ) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "content_type": ctype,
                "digest": digest(data, ctype, remote=remote),
                "length": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
            for name, (ctype, data) in atts.items()
        }

    out = await run_pouch(
        "attachments",
        doc_id="album",
        first=wire(blobs),
        second=wire(more),
        remote_a=device_remote(phone, APP),
        remote_b=device_remote(laptop, APP),
    )
    result = out["result"]
    assert_clean(out)
    for step in ("push_a", "pull_b", "push_b", "pull_a"):
        assert_replicated(result[step], 1)

    assert result["b_after_pull"]["attachments"] == expected(blobs)
    everything = expected(blobs | more)
    assert result["a_after_pull"]["attachments"] == everything
    on_remote = expected(blobs | more, remote=True)
    assert result["remote"]["attachments"] == on_remote
    assert result["a_after_pull"]["rev"] == result["remote"]["rev"]
    assert result["remote_get"] == {
        name: {"length": att["length"], "sha256": att["sha256"]} for name, att in everything.items()
    }

    status, doc = await peek(gateway, phone, "/album")
    assert status == 200
    assert {
        name: (stub["digest"], stub["length"]) for name, stub in doc["_attachments"].items()
    } == {name: (att["digest"], att["length"]) for name, att in on_remote.items()}


AWKWARD_IDS = [
    "a/b",
    "a+b",
    "a b",
    "100%",
    "ünïcødé",
    "日本",
    "🎉 party",
    "a%2Fb",
    "?q=1&x#y",
    "trailing/",
]


async def test_awkward_doc_ids_survive_the_round_trip(gateway: GatewayHarness) -> None:
    device = await gateway.new_device()

    out = await run_pouch("ids", ids=AWKWARD_IDS, remote=device_remote(device, APP))
    result = out["result"]
    assert_clean(out)
    assert_replicated(result["push"], len(AWKWARD_IDS))
    assert_replicated(result["pull"], len(AWKWARD_IDS))
    assert {doc["_id"]: doc["title"] for doc in result["pulled"]} == {i: i for i in AWKWARD_IDS}
    # GET /db/notes/<encoded id> and PUT on it, one by one, through the gateway.
    assert {i: doc["_id"] for i, doc in result["remote_get"].items()} == {i: i for i in AWKWARD_IDS}
    assert all(rev.startswith("2-") for rev in result["remote_put"].values())
    assert_replicated(result["pull_again"], len(AWKWARD_IDS))
    assert {doc["_id"]: (doc["_rev"], doc["touched"]) for doc in result["pulled_after"]} == {
        i: (rev, True) for i, rev in result["remote_put"].items()
    }

    # From _changes: pouchdb-server's _all_docs leaves ids from U+0800 up out of its default range.
    status, changes = await peek(gateway, device, "/_changes")
    assert status == 200
    assert sorted(row["id"] for row in changes["results"]) == sorted(AWKWARD_IDS)
    for doc_id in AWKWARD_IDS:
        status, doc = await peek(gateway, device, "/" + quote(doc_id, safe=""))
        assert (status, doc["_id"], doc["_rev"]) == (200, doc_id, result["remote_put"][doc_id])


async def test_second_replication_after_a_checkpoint_transfers_nothing(
    gateway: GatewayHarness,
) -> None:
    device = await gateway.new_device()

    out = await run_pouch("checkpoint", count=300, remote=device_remote(device, APP))
    result = out["result"]
    assert_clean(out)
    assert_replicated(result["push_1"], 300)
    assert_replicated(result["push_2"], 0)
    assert_replicated(result["pull_1"], 300)
    assert_replicated(result["pull_2"], 0)
    # The checkpoints hold, yet new changes still flow.
    assert_replicated(result["push_3"], 1)
    assert_replicated(result["pull_3"], 1)
    assert_replicated(result["pull_4"], 0)


async def test_a_second_user_never_sees_the_first_users_docs(gateway: GatewayHarness) -> None:
    alice = await gateway.new_device("alice@example.org")
    bob = await gateway.new_device("bob@example.org")
    assert alice.user != bob.user
    assert gateway.upstream_db(alice, APP) != gateway.upstream_db(bob, APP)
    # PouchDB's replication ids hang on this uuid: one per user.
    (_, alice_server), (_, bob_server) = [
        await gateway.call("GET", "/db/", device=device) for device in (alice, bob)
    ]
    assert alice_server["uuid"] != bob_server["uuid"]
    alice_docs = [{"_id": f"alice-{i:02d}", "secret": i} for i in range(25)]
    pushed = await run_pouch("push", remote=device_remote(alice, APP), docs=alice_docs)
    assert_replicated(pushed["result"]["replication"], 25)

    info = await run_pouch("info", remote=device_remote(bob, APP))
    assert info["result"]["info"]["doc_count"] == 0
    pulled = await run_pouch("pull", remote=device_remote(bob, APP))
    assert_replicated(pulled["result"]["replication"], 0)
    assert pulled["result"]["docs"] == []
    status, body = await gateway.call("GET", f"/db/{APP}/alice-01", device=bob)
    assert (status, body) == (404, {"error": "not_found", "reason": "missing"})

    # And the other way round: Bob's writes stay out of Alice's database.
    pushed = await run_pouch(
        "push",
        remote=device_remote(bob, APP),
        docs=[{"_id": "bob-1", "mine": True}, {"_id": "alice-01", "x": 1}],
    )
    assert_replicated(pushed["result"]["replication"], 2)
    pulled = await run_pouch("pull", remote=device_remote(alice, APP))
    assert [strip_rev(doc) for doc in pulled["result"]["docs"]] == alice_docs
    status, bob_db = await peek(gateway, bob, "/_all_docs")
    assert status == 200 and [row["id"] for row in bob_db["rows"]] == ["alice-01", "bob-1"]
    status, alice_db = await peek(gateway, alice, "/")
    assert status == 200 and alice_db["doc_count"] == 25


async def test_basic_auth_with_the_token_as_password(gateway: GatewayHarness) -> None:
    device = await gateway.new_device()
    docs = [{"_id": f"b-{i:03d}", "n": i} for i in range(50)]

    pushed = await run_pouch("push", remote=device_remote(device, APP, scheme="basic"), docs=docs)
    assert_replicated(pushed["result"]["replication"], 50)
    assert_clean(pushed)
    pulled = await run_pouch("pull", remote=device_remote(device, APP))
    assert [strip_rev(doc) for doc in pulled["result"]["docs"]] == docs


async def test_a_revoked_device_is_refused(gateway: GatewayHarness) -> None:
    phone = await gateway.new_device()
    laptop = await gateway.new_device(same_user_as=phone)
    pushed = await run_pouch("push", remote=device_remote(laptop, APP), docs=[{"_id": "x"}])
    assert_replicated(pushed["result"]["replication"], 1)

    await gateway.revoke(laptop)
    out = await run_pouch("pull", check=False, remote=device_remote(laptop, APP))
    assert out["ok"] is False
    assert (out["error"]["status"], out["error"]["name"]) == (401, "unauthorized")
    pulled = await run_pouch("pull", remote=device_remote(phone, APP))
    assert [doc["_id"] for doc in pulled["result"]["docs"]] == ["x"]


async def test_revoking_a_device_ends_its_open_live_feeds(gateway: GatewayHarness) -> None:
    phone = await gateway.new_device()
    laptop = await gateway.new_device(same_user_as=phone)
    await run_pouch("info", remote=device_remote(phone, APP))

    async with await PouchSession.start(
        "revoke-live",
        timeout_ms=10_000,
        settle_ms=2_000,
        remote_a=device_remote(phone, APP),
        remote_b=device_remote(laptop, APP),
    ) as session:
        await session.wait_for("ready")
        await gateway.revoke(laptop)
        await session.send({"go": True})
        out = await session.result(timeout=60)
    result = out["result"]

    assert result["pushed_by_a"] is True
    # Nothing written after the revocation reaches the laptop, by its sync or its bare feed.
    assert result["b_has_after"] is False
    assert "after" not in result["feed"]["ids"]
    # Its sync is refused and stops (PouchDB gives up on `unauthorized`); the phone's carries on.
    events = [(e["side"], e["event"], e["error"].get("status")) for e in result["events_after"]]
    assert ("b", "error", 401) in events, result["events_after"]
    assert [event for event in events if event[0] == "a"] == []
    # Its bare feed ended at once (PouchDB asks for a 10 s heartbeat): within 2 s of the line
    # that follows the revocation, or before that line even reached the client (at_ms None:
    # the revocation also gives back the device's place under the limit before it answers) ...
    feed_end = result["feed"]["error"]
    assert feed_end is not None, result["feed"]
    assert feed_end["at_ms"] is None or feed_end["at_ms"] < 2_000, result["feed"]
    # ... cleanly, so PouchDB reconnected and was refused, rather than choking on a cut body.
    assert (feed_end.get("status"), feed_end.get("name")) == (401, "unauthorized"), feed_end
    status, body = await gateway.call("GET", f"/db/{APP}/", device=laptop)
    assert (status, body) == (401, {"error": "unauthorized", "reason": "invalid or revoked token"})
