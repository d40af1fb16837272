"""multipart/related document PUTs reach the upstream only framed as CouchDB's replicator frames
them (issue 9, finding 1): an attachment part without a file name killed express-pouchdb."""

from __future__ import annotations

import asyncio
import json

import pytest
from yarl import URL

from tests.harness import GatewayHarness, MakeGateway

BOUNDARY = "0d4f5e8a9c2b4e1f8a7d6c5b4a392817"
DOC = {"_id": "mp", "_attachments": {"a.bin": {"follows": True, "content_type": "x/y"}}}
GOOD_HEAD = 'Content-Disposition: attachment; filename="a.bin"\r\nContent-Type: x/y'


def body(
    doc: object = DOC,
    parts: list[tuple[str, bytes]] | None = None,
    *,
    preamble: bytes = b"",
    doc_headers: str = "Content-Type: application/json",
    close: bool = True,
) -> bytes:
    out = preamble + f"--{BOUNDARY}\r\n{doc_headers}\r\n\r\n".encode() + json.dumps(doc).encode()
    for headers, data in [(GOOD_HEAD, b"attachment bytes")] if parts is None else parts:
        out += f"\r\n--{BOUNDARY}\r\n".encode()
        out += (headers + "\r\n\r\n" if headers else "\r\n").encode() + data
    return out + (f"\r\n--{BOUNDARY}--".encode() if close else b"")


MALFORMED = {
    "no content-disposition": body(parts=[("Content-Type: x/y", b"not json")]),
    "no headers at all": body(parts=[("", b"not json")]),
    "disposition without filename": body(parts=[("Content-Disposition: attachment", b"{")]),
    "form-data field": body(parts=[('Content-Disposition: form-data; name="x"', b"{")]),
    "another name": body(parts=[('Content-Disposition: attachment; filename="b.bin"', b"x")]),
    "one part too many": body(parts=[(GOOD_HEAD, b"x"), (GOOD_HEAD, b"y")]),
    "one part too few": body(parts=[]),
    "no closing delimiter": body(close=False),
    "preamble": body(preamble=b"hello\r\n"),
    "document named a file": body(
        doc_headers='Content-Type: application/json\r\nContent-Disposition: x; filename="d"'
    ),
    "folded header": body(parts=[(GOOD_HEAD + "\r\n more", b"x")]),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_malformed_parts_are_refused_before_they_reach_the_upstream(
    gateway: GatewayHarness, name: str
) -> None:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    status, answer = await gateway.call(
        "PUT",
        "/db/notes/mp",
        device=device,
        data=MALFORMED[name],
        headers={"Content-Type": f'multipart/related; boundary="{BOUNDARY}"'},
    )
    assert status == 400, answer
    assert answer["error"] == "bad_request" and set(answer) == {"error", "reason"}
    assert (await gateway.peek("GET", "/"))[0] == 200
    status, _ = await gateway.call("GET", "/db/notes/mp", device=device)
    assert status == 404
    status, _ = await gateway.call("PUT", "/db/notes/after", device=device, json={})
    assert status == 201


async def test_well_framed_attachments_are_stored(gateway: GatewayHarness) -> None:
    device = await gateway.new_device()
    await gateway.call("PUT", "/db/notes", device=device)
    doc = {
        "_id": "mp",
        "_attachments": {
            "a.bin": {"follows": True, "content_type": "x/y", "length": 3},
            "b.bin": {"follows": True, "content_type": "x/y", "length": 2},
        },
    }
    second = 'Content-Disposition: attachment; filename="b.bin"\r\nContent-Type: x/y'
    status, answer = await gateway.call(
        "PUT",
        "/db/notes/mp",
        device=device,
        data=body(doc, [(GOOD_HEAD, b"one"), (second, b"tw")]),
        headers={"Content-Type": f'multipart/related; boundary="{BOUNDARY}"'},
    )
    assert status == 201, answer
    for name, data in (("a.bin", b"one"), ("b.bin", b"tw")):
        async with gateway.session.get(
            f"{device.db_url('notes')}/mp/{name}", headers=device.headers
        ) as r:
            assert (r.status, await r.read()) == (200, data)


async def test_a_client_leaving_mid_upload_leaves_the_upstream_up(gateway: GatewayHarness) -> None:
    """express-pouchdb dies of any multipart upload that ends short: nothing is forwarded before
    the whole body is here and checked."""
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    url = URL(gateway.url)
    whole = body()
    for cut in (len(whole) // 2, len(whole) - 3):
        _, writer = await asyncio.open_connection(url.host, url.port)
        writer.write(
            (
                f"PUT /db/notes/mp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {device.token}\r\n"
                f'Content-Type: multipart/related; boundary="{BOUNDARY}"\r\n'
                f"Content-Length: {len(whole)}\r\n\r\n"
            ).encode()
            + whole[:cut]
        )
        await writer.drain()
        writer.transport.abort()
    status, _ = await gateway.call("PUT", "/db/notes/after", device=device, json={})
    assert status == 201
    assert (await gateway.peek("GET", "/"))[0] == 200
    assert (await gateway.call("GET", "/db/notes/mp", device=device))[0] == 404


async def test_a_multipart_body_past_the_size_cap_is_413(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(max_request_size=100_000)
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    status, answer = await gateway.call(
        "PUT",
        "/db/notes/mp",
        device=device,
        data=body(parts=[(GOOD_HEAD, b"x" * 200_000)]),
        headers={"Content-Type": f'multipart/related; boundary="{BOUNDARY}"'},
    )
    assert (status, answer["error"]) == (413, "too_large"), answer
