"""A body the gateway would read one way and the upstream another could show the plaintext guard
a sealed document while the upstream stores plaintext. Such bodies are refused outright; the
upstream never sees them (checked on pouchdb-server and on the embedded store, which parse
multipart the way CouchDB does)."""

from __future__ import annotations

import base64
import json

import encryption_plugin as ep
from tests.harness import Device, GatewayHarness, MakeGateway

APP = "vault"


async def _sealed_app(make_gateway: MakeGateway) -> tuple[GatewayHarness, Device]:
    gw = await make_gateway(plaintext_apps="")
    device = await gw.new_device()
    assert (await gw.call("PUT", f"/db/{APP}/", device=device))[0] == 201
    return gw, device


def _part(boundary: str, doc: dict[str, object]) -> bytes:
    return (
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode()
        + json.dumps(doc).encode()
        + f"\r\n--{boundary}--\r\n".encode()
    )


async def test_a_boundary_the_upstream_would_split_differently_is_refused(
    make_gateway: MakeGateway,
) -> None:
    gw, device = await _sealed_app(make_gateway)
    sealed = ep.seal_doc({"_id": "doc1", "note": "x"}, ep.Keyring.generate(APP))
    # The upstream would take "A" as the boundary and store the first, plaintext part.
    body = _part("A", {"title": "PLAINTEXT"}) + _part("A;boundary=B", sealed)
    status, answer = await gw.call(
        "PUT",
        f"/db/{APP}/doc1",
        device=device,
        data=body,
        headers={"Content-Type": 'multipart/related; boundary="A;boundary=B"'},
    )
    assert (status, answer["error"]) == (400, "bad_request")
    assert (await gw.call("GET", f"/db/{APP}/doc1", device=device))[0] == 404


async def test_json_that_is_not_utf_8_is_refused(make_gateway: MakeGateway) -> None:
    gw, device = await _sealed_app(make_gateway)
    utf16 = json.dumps({"title": "PLAINTEXT"}).encode("utf-16")
    status, answer = await gw.call(
        "PUT",
        f"/db/{APP}/doc2",
        device=device,
        data=utf16,
        headers={"Content-Type": "application/json"},
    )
    assert (status, answer) == (400, {"error": "bad_request", "reason": "invalid UTF-8 JSON"})
    bulk = json.dumps({"docs": [{"_id": "doc3", "title": "PLAINTEXT"}]}).encode("utf-16")
    status, answer = await gw.call(
        "POST",
        f"/db/{APP}/_bulk_docs",
        device=device,
        data=bulk,
        headers={"Content-Type": "application/json"},
    )
    assert status == 400
    for doc_id in ("doc2", "doc3"):
        assert (await gw.call("GET", f"/db/{APP}/{doc_id}", device=device))[0] == 404


async def test_look_alike_multipart_types_are_refused(make_gateway: MakeGateway) -> None:
    gw, device = await _sealed_app(make_gateway)
    inner = base64.b64encode(b"irrelevant").decode()
    for content_type in (
        "multipart/related-x; boundary=ZZ",
        "Multipart/Related; boundary=ZZ",
        "text/plain",
        "application/x-www-form-urlencoded",
    ):
        status, answer = await gw.call(
            "PUT",
            f"/db/{APP}/doc4",
            device=device,
            data=_part("ZZ", {"title": inner}),
            headers={"Content-Type": content_type},
        )
        assert (status, answer["error"]) == (415, "bad_content_type"), content_type
    assert (await gw.call("GET", f"/db/{APP}/doc4", device=device))[0] == 404
