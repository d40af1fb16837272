"""Revision ids in an encrypted app are hashes (issue 9, finding 9): with ``new_edits=false``,
``_rev: "1-PLAINsecret"`` and 2,000 arbitrary ``_revisions.ids`` were stored as given."""

from __future__ import annotations

import json
from typing import Any

import pytest

import encryption_plugin as ep
from tests.harness import Device, GatewayHarness, MakeGateway

MARKER = "PLAINsecret"
HASH = "0123456789abcdef0123456789abcdef"


async def encrypted(make_gateway: MakeGateway) -> tuple[GatewayHarness, Device, dict[str, Any]]:
    gateway = await make_gateway(plaintext_apps="")
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    sealed = ep.seal_doc({"_id": "d", "n": 1}, ep.Keyring.generate("notes"))
    return gateway, device, sealed


BAD = [
    {"_rev": f"1-{MARKER}"},
    {"_rev": f"1-{HASH.upper()}"},
    {"_rev": f"0-{HASH}"},
    {"_rev": f"2-{HASH}", "_revisions": {"start": 2, "ids": [MARKER, HASH]}},
    {"_rev": f"2-{HASH}", "_revisions": {"start": 2, "ids": [HASH, HASH], "x": MARKER}},
    {"_rev": f"2000-{HASH}", "_revisions": {"start": 2000, "ids": [HASH] * 1001}},
    {"_rev": f"1-{HASH}", "_revisions": {"start": "1", "ids": [HASH]}},
    {"_rev": f"1-{HASH}", "_revisions": {"start": 1, "ids": [HASH, HASH]}},
]


@pytest.mark.parametrize("revs", BAD)
async def test_made_up_revision_ids_are_refused(
    make_gateway: MakeGateway, revs: dict[str, Any]
) -> None:
    gateway, device, sealed = await encrypted(make_gateway)
    doc = {**sealed, **revs}
    status, answer = await gateway.call(
        "PUT", "/db/notes/d?new_edits=false", device=device, json=doc
    )
    assert status == 403 and answer["error"] == "forbidden", answer
    status, answer = await gateway.call(
        "POST", "/db/notes/_bulk_docs", device=device, json={"docs": [doc], "new_edits": False}
    )
    assert status == 201 and answer[0]["error"] == "forbidden", answer
    tombstone = {"_id": "t", "_deleted": True, **revs}
    status, answer = await gateway.call(
        "POST",
        "/db/notes/_bulk_docs",
        device=device,
        json={"docs": [tombstone], "new_edits": False},
    )
    assert status == 201 and answer[0]["error"] == "forbidden", answer
    status, raw = await gateway.peek(
        "GET", f"/{gateway.upstream_db(device, 'notes')}/_changes?style=all_docs"
    )
    assert status == 200 and raw["results"] == [] and MARKER not in json.dumps(raw)


async def test_a_query_rev_is_held_to_the_same_rule(make_gateway: MakeGateway) -> None:
    gateway, device, sealed = await encrypted(make_gateway)
    status, answer = await gateway.call(
        "PUT", f"/db/notes/d?new_edits=false&rev=1-{MARKER}", device=device, json=sealed
    )
    assert status == 403, answer


async def test_revision_ids_as_replicators_write_them_pass(make_gateway: MakeGateway) -> None:
    gateway, device, sealed = await encrypted(make_gateway)
    ids = [f"{i:032x}" for i in range(1000, 0, -1)]
    doc = {**sealed, "_rev": f"1000-{ids[0]}", "_revisions": {"start": 1000, "ids": ids}}
    status, answer = await gateway.call(
        "POST", "/db/notes/_bulk_docs", device=device, json={"docs": [doc], "new_edits": False}
    )
    assert status == 201 and answer == [], answer
    status, stored = await gateway.call("GET", "/db/notes/d", device=device)
    assert status == 200 and stored["_rev"] == f"1000-{ids[0]}"
    update = {**sealed, "_rev": stored["_rev"]}
    status, answer = await gateway.call("PUT", "/db/notes/d", device=device, json=update)
    assert status == 201, answer
