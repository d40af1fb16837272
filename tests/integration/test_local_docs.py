"""``_local`` documents: capped and counted on every route, and only checkpoints in an encrypted
app (issue 9, finding 4). Through ``_bulk_docs`` a 2 MB local doc was accepted, and with a 1 MB
quota 4.2 MB of readable plaintext was stored in ``_local`` documents."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import quote

import pytest

from gateway.replication.writes import LOCAL_DOCS_PER_APP
from tests.harness import Device, GatewayHarness, GatewayTarget, MakeGateway
from tests.integration.test_limits import skip_byte_quotas_on_pouchdb_server

MARKER = "PLAINTEXT-MARKER-" + "x" * 40

# What the two replicators write, as CouchDB 3.5.2's scheduler and pouchdb-checkpointer do.
COUCHDB_SEQ = "1-g1AAAAC3eJzLYWBgYMpgTmGQSM4vTc5ISdI1tbQ01DV0MDQy1zMAQsMckIpEhqT6____Z2UwJzLkAgXYD"
COUCHDB_CHECKPOINT = {
    "session_id": "ed655136f8ee9ca190014bf01ec032dc",
    "source_last_seq": COUCHDB_SEQ,
    "replication_id_version": 4,
    "history": [
        {
            "session_id": "ed655136f8ee9ca190014bf01ec032dc",
            "start_time": "Tue, 01 Dec 2026 09:15:46 GMT",
            "end_time": "Tue, 01 Dec 2026 09:15:50 GMT",
            "start_last_seq": 0,
            "end_last_seq": COUCHDB_SEQ,
            "recorded_seq": COUCHDB_SEQ,
            "missing_checked": 1,
            "missing_found": 1,
            "docs_read": 1,
            "docs_written": 1,
            "doc_write_failures": 0,
            "bulk_get_docs": 1,
            "bulk_get_attempts": 1,
        }
    ],
}
POUCHDB_CHECKPOINT = {
    "session_id": "6a1a9f0e-3c1b-4b7e-9d2a-0c5e8f7a6b5d",
    "history": [{"last_seq": 12, "session_id": "6a1a9f0e-3c1b-4b7e-9d2a-0c5e8f7a6b5d"}],
    "replicator": "pouchdb",
    "version": 1,
    "last_seq": 12,
}


async def provisioned(gateway: GatewayHarness) -> Device:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    return device


async def stored(gateway: GatewayHarness, device: Device, doc_id: str) -> bool:
    status, _ = await gateway.peek("GET", f"/{gateway.upstream_db(device, 'notes')}/{doc_id}")
    return status == 200


def as_json(value: object) -> dict[str, Any]:
    """Request arguments for a JSON body of any size (aiohttp warns about large raw bytes)."""
    return {
        "data": io.BytesIO(json.dumps(value).encode()),
        "headers": {"Content-Type": "application/json"},
    }


async def bulk(gateway: GatewayHarness, device: Device, docs: list[Any]) -> tuple[int, Any]:
    return await gateway.call(
        "POST", "/db/notes/_bulk_docs", device=device, **as_json({"docs": docs, "new_edits": True})
    )


async def test_the_cap_holds_in_bulk_docs_too(gateway: GatewayHarness) -> None:
    device = await provisioned(gateway)
    big = {"_id": "_local/big", "blob": "x" * 2_000_000}
    status, answer = await bulk(gateway, device, [big, {"_id": "_local/small", "a": 1}])
    assert status == 201, answer
    assert answer[0]["error"] == "too_large" and answer[0]["id"] == "_local/big"
    assert not await stored(gateway, device, "_local/big")
    assert await stored(gateway, device, "_local/small")
    status, answer = await gateway.call(
        "PUT", "/db/notes/_local/big", device=device, **as_json(big)
    )
    assert status == 413, answer


async def test_local_docs_count_toward_the_byte_quota(
    make_gateway: MakeGateway, gateway_upstream: GatewayTarget
) -> None:
    skip_byte_quotas_on_pouchdb_server(gateway_upstream)
    gateway = await make_gateway(quota_bytes=1_000_000)
    device = await provisioned(gateway)
    accepted = 0
    for i in range(40):
        doc = {"blob": "y" * 60_000}
        if i % 2:
            status, _ = await gateway.call("PUT", f"/db/notes/_local/c{i}", device=device, json=doc)
        else:
            status, _ = await bulk(gateway, device, [{"_id": f"_local/c{i}", **doc}])
        if status == 403:
            break
        assert status == 201
        accepted += 1
    assert 10 <= accepted <= 17  # 1 MB in 60 kB documents, and the database's own few bytes
    # Deleting one gives its room back.
    status, doc = await gateway.call("GET", "/db/notes/_local/c1", device=device)
    assert status == 200
    status, _ = await gateway.call(
        "DELETE", f"/db/notes/_local/c1?rev={doc['_rev']}", device=device
    )
    assert status == 200
    status, _ = await gateway.call(
        "PUT", "/db/notes/_local/again", device=device, json={"blob": "z" * 10_000}
    )
    assert status == 201


async def test_local_docs_are_counted(gateway: GatewayHarness) -> None:
    device = await provisioned(gateway)
    docs = [{"_id": f"_local/n{i}"} for i in range(LOCAL_DOCS_PER_APP + 1)]
    status, answer = await bulk(gateway, device, docs)
    assert status == 403 and answer["error"] == "forbidden", answer
    status, _ = await bulk(gateway, device, docs[:LOCAL_DOCS_PER_APP])
    assert status == 201
    # Updates of known checkpoints still pass; one more new one does not.
    status, n0 = await gateway.call("GET", "/db/notes/_local/n0", device=device)
    assert status == 200, n0
    status, _ = await gateway.call("PUT", "/db/notes/_local/n0", device=device, json={**n0, "a": 1})
    assert status == 201
    status, _ = await gateway.call("PUT", "/db/notes/_local/extra", device=device, json={})
    assert status == 403
    # The app's database deleted and made again starts from nothing.
    assert (await gateway.call("DELETE", "/db/notes", device=device))[0] == 200
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    status, _ = await gateway.call("PUT", "/db/notes/_local/extra", device=device, json={})
    assert status == 201


@pytest.mark.parametrize("checkpoint", [COUCHDB_CHECKPOINT, POUCHDB_CHECKPOINT])
async def test_an_encrypted_app_takes_checkpoints(
    make_gateway: MakeGateway, checkpoint: dict[str, Any]
) -> None:
    gateway = await make_gateway(plaintext_apps="")
    device = await provisioned(gateway)
    status, answer = await gateway.call(
        "PUT", "/db/notes/_local/abc", device=device, json=checkpoint
    )
    assert status == 201, answer
    status, answer = await bulk(gateway, device, [{"_id": "_local/def", **checkpoint}])
    assert status == 201 and "error" not in answer[0], answer


@pytest.mark.parametrize(
    "doc",
    [
        {"note": MARKER},
        {**POUCHDB_CHECKPOINT, "note": MARKER},
        {**POUCHDB_CHECKPOINT, "session_id": MARKER + " with spaces"},
        {**POUCHDB_CHECKPOINT, "last_seq": MARKER},
        {**POUCHDB_CHECKPOINT, "history": [{"last_seq": 1, "note": MARKER}]},
        {**POUCHDB_CHECKPOINT, "history": [{"last_seq": 1}] * 51},
        {**COUCHDB_CHECKPOINT, "history": [{"start_time": MARKER}]},
        {**POUCHDB_CHECKPOINT, "version": MARKER},
    ],
)
async def test_an_encrypted_app_refuses_anything_else_in_local_docs(
    make_gateway: MakeGateway, doc: dict[str, Any]
) -> None:
    gateway = await make_gateway(plaintext_apps="")
    device = await provisioned(gateway)
    status, answer = await gateway.call("PUT", "/db/notes/_local/x", device=device, json=doc)
    assert status == 403 and answer["error"] == "forbidden", answer
    status, answer = await bulk(gateway, device, [{"_id": "_local/y", **doc}])
    assert status == 201 and answer[0]["error"] == "forbidden", answer
    for doc_id in ("_local/x", "_local/y"):
        assert not await stored(gateway, device, doc_id)
    status, raw = await gateway.peek("GET", f"/{gateway.upstream_db(device, 'notes')}/_all_docs")
    assert MARKER not in json.dumps(raw)


@pytest.mark.parametrize("rev", ["1-abc", "0-abc", "0-", "2-5", "0-1.0", "0- 1", "x-1", 5, None])
async def test_a_local_revision_couchdb_cannot_read_is_refused_with_400(
    gateway: GatewayHarness, rev: object
) -> None:
    """CouchDB answers 500 ("Invalid rev format") to a ``_local`` write whose ``_rev`` is a
    revision but not ``0-<integer>`` (found by the fuzz suite): such a write gets CouchDB's own
    400 here, in the body and in ``?rev=``, and nothing is written."""
    device = await provisioned(gateway)
    status, body = await gateway.call(
        "PUT", "/db/notes/_local/cp", device=device, json={"_rev": rev, "m": MARKER}
    )
    assert (status, body) == (400, {"error": "bad_request", "reason": "Invalid rev format"})
    if isinstance(rev, str):
        status, body = await gateway.call(
            "PUT", f"/db/notes/_local/cp?rev={quote(rev)}", device=device, json={"m": MARKER}
        )
        assert (status, body) == (400, {"error": "bad_request", "reason": "Invalid rev format"})
    assert not await stored(gateway, device, "_local/cp")


async def test_local_revisions_as_couchdb_reads_them_still_pass(gateway: GatewayHarness) -> None:
    device = await provisioned(gateway)
    status, body = await gateway.call(
        "PUT", "/db/notes/_local/cp", device=device, json={"m": "first"}
    )
    assert status == 201, body
    status, body = await gateway.call(
        "PUT", "/db/notes/_local/cp", device=device, json={"_rev": body["rev"], "m": "second"}
    )
    assert status == 201, body
    status, body = await gateway.call(
        "PUT", f"/db/notes/_local/cp?rev={body['rev']}", device=device, json={"m": "third"}
    )
    assert status == 201, body
