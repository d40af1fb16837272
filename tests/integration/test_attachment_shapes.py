"""Attachment and ``new_edits`` shapes CouchDB cannot read, refused by the gateway with the
answer CouchDB 3.5.2 gives the nearest shape it can read, before anything is forwarded.

CouchDB answers these with 500 ``function_clause`` (``follows`` in a JSON body, a ``new_edits``
that is not a boolean, a stub's ``md5-`` digest that is not base64, a number for a content type),
and ``"data": 5`` or ``follows`` in a JSON body take pouchdb-server down for every user. Each is
sent to a plaintext app (an encrypted app refuses most of them as unsealed first), and after
each the upstream must still answer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import GatewayHarness

BAD_DATA = {"error": "bad_request", "reason": "Invalid attachment data for a"}


def _with(entry: object) -> dict[str, Any]:
    return {"_attachments": {"a": entry}}


@pytest.mark.parametrize(
    ("doc", "answer"),
    [
        (_with({"content_type": "text/plain", "data": 5}), (400, BAD_DATA)),
        (_with({"follows": True, "length": 5}), (400, BAD_DATA)),
        (
            _with({"content_type": "text/plain", "follows": True, "data": "aGVsbG8="}),
            (400, BAD_DATA),
        ),
        (_with({"content_type": 5, "data": "aGVsbG8="}), (400, BAD_DATA)),
        (_with({"content_type": "text/plain", "data": "aGVsbG8"}), (400, BAD_DATA)),
        (_with({"content_type": "text/plain", "data": "aGVs bG8="}), (400, BAD_DATA)),
        (
            _with({"stub": True, "digest": "md5-bogus"}),
            (412, {"error": "missing_stub", "reason": "Invalid attachment stub in d for a"}),
        ),
    ],
    ids=[
        "data-5",
        "follows-in-json",
        "follows-and-data",
        "type-5",
        "unpadded-base64",
        "spaced-base64",
        "bad-digest",
    ],
)
async def test_an_attachment_couchdb_cannot_read_is_refused_as_couchdb_refuses_it(
    gateway: GatewayHarness, doc: dict[str, Any], answer: tuple[int, dict[str, str]]
) -> None:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    assert await gateway.call("PUT", "/db/notes/d", device=device, json=doc) == answer
    await _upstream_still_answers(gateway)
    # In _bulk_docs CouchDB refuses the whole request for one such document, as here.
    bulk = {"docs": [{"_id": "ok", "v": 1}, {"_id": "d", **doc}]}
    assert await gateway.call("POST", "/db/notes/_bulk_docs", device=device, json=bulk) == answer
    await _upstream_still_answers(gateway)
    assert (await gateway.call("GET", "/db/notes/ok", device=device))[0] == 404


@pytest.mark.parametrize("new_edits", ["false", 0, None, [], {}])
async def test_new_edits_that_is_not_a_boolean_is_a_400(
    make_gateway: Any, new_edits: object
) -> None:
    """CouchDB answers 500 ``function_clause`` to ``{"new_edits": "false"}``, in encrypted apps
    ("sealed") as in plaintext ones."""
    gateway = await make_gateway(plaintext_apps="notes")
    device = await gateway.new_device()
    for app in ("notes", "sealed"):
        assert (await gateway.call("PUT", f"/db/{app}", device=device))[0] == 201
        body = {"docs": [], "new_edits": new_edits}
        status, answer = await gateway.call(
            "POST", f"/db/{app}/_bulk_docs", device=device, json=body
        )
        assert (status, answer) == (
            400,
            {"error": "bad_request", "reason": "`new_edits` must be true or false"},
        )


async def test_the_shapes_couchdb_reads_still_pass(gateway: GatewayHarness) -> None:
    """What CouchDB takes goes through: a stub of an attachment the document has, inline data,
    and (in a multipart body, tests/integration/test_multipart_framing.py) ``follows``."""
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    doc = _with({"content_type": "text/plain", "data": "aGVsbG8="})
    status, made = await gateway.call("PUT", "/db/notes/d", device=device, json=doc)
    assert status == 201, made
    status, stored = await gateway.call("GET", "/db/notes/d", device=device)
    assert status == 200 and stored["_attachments"]["a"]["stub"] is True
    stored["v"] = 2
    status, answer = await gateway.call("PUT", "/db/notes/d", device=device, json=stored)
    assert status == 201, answer
    status, answer = await gateway.call(
        "POST",
        "/db/notes/_bulk_docs",
        device=device,
        json={"docs": [{"_id": "x", "_rev": "1-" + "a" * 32}], "new_edits": False},
    )
    assert (status, answer) == (201, [])


async def _upstream_still_answers(gateway: GatewayHarness) -> None:
    status, _ = await gateway.peek("GET", "/")
    assert status == 200
