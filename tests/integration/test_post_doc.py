"""``POST /db/<app>`` creates a document as CouchDB does, through the same policy as a PUT, and
``_local`` attachments get CouchDB's 400 (issue 11's gateway items)."""

from __future__ import annotations

import json

import pytest

import encryption_plugin as ep
from tests.harness import Device, GatewayHarness, MakeGateway

NOT_ENCRYPTED = {"error": "forbidden", "reason": "document is not encrypted"}


async def provisioned(gateway: GatewayHarness) -> Device:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    return device


async def test_a_post_creates_a_document_with_a_server_made_id(gateway: GatewayHarness) -> None:
    device = await provisioned(gateway)
    status, answer = await gateway.call("POST", "/db/notes", device=device, json={"a": 1})
    assert status == 201, answer
    assert answer["ok"] is True and answer["id"] and answer["rev"].startswith("1-")
    status, doc = await gateway.call("GET", f"/db/notes/{answer['id']}", device=device)
    assert status == 200 and doc["a"] == 1
    status, answer = await gateway.call(
        "POST", "/db/notes/", device=device, json={"_id": "mine", "b": 2}
    )
    assert (status, answer["id"]) == (201, "mine")


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"_id": "_design/x", "views": {}}, 403, "forbidden"),
        ([1], 400, "bad_request"),
        ({"_id": "_local/big", "blob": "x" * 70_000}, 413, "too_large"),
    ],
)
async def test_a_post_is_refused_as_a_put_would_be(
    gateway: GatewayHarness, body: object, status: int, error: str
) -> None:
    device = await provisioned(gateway)
    got_status, answer = await gateway.call("POST", "/db/notes", device=device, json=body)
    assert (got_status, answer["error"]) == (status, error), answer
    status, raw = await gateway.peek("GET", f"/{gateway.upstream_db(device, 'notes')}")
    assert raw["doc_count"] == 0


async def test_a_post_needs_json(gateway: GatewayHarness) -> None:
    device = await provisioned(gateway)
    status, answer = await gateway.call(
        "POST", "/db/notes", device=device, data=json.dumps({"a": 1}), headers={}
    )
    assert (status, answer["error"]) == (415, "bad_content_type"), answer


async def test_a_post_to_an_encrypted_app_must_be_sealed(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(plaintext_apps="")
    device = await provisioned(gateway)
    status, answer = await gateway.call("POST", "/db/notes", device=device, json={"t": "plain"})
    assert (status, answer) == (403, NOT_ENCRYPTED)
    sealed = ep.seal_doc({"_id": "s", "t": 1}, ep.Keyring.generate("notes"))
    status, answer = await gateway.call("POST", "/db/notes", device=device, json=sealed)
    assert status == 201, answer


async def test_a_post_counts_toward_the_quota(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(quota_docs=1)
    device = await provisioned(gateway)
    assert (await gateway.call("POST", "/db/notes", device=device, json={"a": 1}))[0] == 201
    status, answer = await gateway.call("POST", "/db/notes", device=device, json={"a": 2})
    assert (status, answer["error"]) == (403, "forbidden"), answer


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_local_attachments_get_couchdbs_400(gateway: GatewayHarness, method: str) -> None:
    device = await provisioned(gateway)
    status, answer = await gateway.call(method, "/db/notes/_local/x/att", device=device)
    assert (status, answer) == (
        400,
        {"error": "bad_request", "reason": "_local documents do not accept attachments."},
    )
