"""Replication bodies of shapes CouchDB cannot read are refused before they are forwarded (issue 9,
the rule of finding 1): CouchDB answers them with a 500 ``function_clause`` and pouchdb-server
with a 500 or not at all. A ``_bulk_get`` of nothing is answered by couchgate, as CouchDB
answers it."""

from __future__ import annotations

import pytest

from gateway.replication import request_shapes
from tests.harness import GatewayHarness

SHAPES = [
    ("_revs_diff", {"a": [5]}, request_shapes.REVS_DIFF_SHAPE),
    ("_revs_diff", {"a": None}, request_shapes.REVS_DIFF_SHAPE),
    ("_revs_diff", {"a": "1-x"}, request_shapes.REVS_DIFF_SHAPE),
    ("_revs_diff", [1], request_shapes.NOT_AN_OBJECT),
    ("_bulk_get", {"docs": 5}, request_shapes.NO_DOCS),
    ("_bulk_get", {}, request_shapes.NO_DOCS),
    ("_bulk_get", {"docs": [{"id": 5}]}, request_shapes.BULK_GET_ID),
    ("_bulk_get", [], request_shapes.NOT_AN_OBJECT),
    ("_all_docs", {"keys": 5}, request_shapes.KEYS_NOT_A_LIST),
    ("_all_docs", [], request_shapes.NOT_AN_OBJECT),
]


@pytest.mark.parametrize(("endpoint", "body", "reason"), SHAPES)
async def test_unreadable_replication_bodies_are_refused_and_the_upstream_stays_up(
    gateway: GatewayHarness, endpoint: str, body: object, reason: str
) -> None:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes/", device=device))[0] == 201
    answer = await gateway.call("POST", f"/db/notes/{endpoint}", device=device, json=body)
    assert answer == (400, {"error": "bad_request", "reason": reason})
    # The upstream never saw it, and answers the honest shape as before.
    honest = {
        "_revs_diff": {"a": ["1-x"]},
        "_bulk_get": {"docs": [{"id": "a"}]},
        "_all_docs": {"keys": ["a"]},
    }[endpoint]
    status, _ = await gateway.call("POST", f"/db/notes/{endpoint}", device=device, json=honest)
    assert status == 200


async def test_a_bulk_get_of_nothing_is_answered_as_couchdb_answers_it(
    gateway: GatewayHarness,
) -> None:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes/", device=device))[0] == 201
    answer = await gateway.call("POST", "/db/notes/_bulk_get", device=device, json={"docs": []})
    assert answer == (200, {"results": []})
