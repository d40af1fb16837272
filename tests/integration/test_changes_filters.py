"""``_changes`` filters reach the upstream only in a shape CouchDB accepts (issue 9, finding 1).

pouchdb-server took a ``_selector`` filter without a selector (or a ``_doc_ids`` filter without
ids) as a design document's name and died of the unhandled error; every user then got 503. The
refusals below are CouchDB 3.5.2's own answers to the same requests.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.harness import GatewayHarness

JSON = {"Content-Type": "application/json"}
NO_SELECTOR = {"error": "bad_request", "reason": "Selector must be specified in POST payload"}
NOT_OBJECT = {"error": "bad_request", "reason": "Selector error: expected a JSON object"}
NO_IDS = {"error": "bad_request", "reason": "`doc_ids` filter parameter is not a list of doc ids."}

REFUSED: list[tuple[str, str, Any, dict[str, str] | None]] = [
    ("GET", "filter=_selector", None, NO_SELECTOR),
    ("GET", "filter=_selector&feed=longpoll&since=now", None, NO_SELECTOR),
    ("GET", "filter=_selector&selector=%7B%7D", None, NO_SELECTOR),
    ("POST", "filter=_selector", {}, NO_SELECTOR),
    ("POST", "filter=_selector&feed=longpoll&since=now", {}, NO_SELECTOR),
    ("POST", "filter=_selector", {"selector": 5}, NOT_OBJECT),
    ("POST", "filter=_selector", {"selector": None}, NOT_OBJECT),
    ("POST", "filter=_selector&feed=longpoll", {"selector": [1]}, NOT_OBJECT),
    ("POST", "filter=_selector", {"selector": {"a": {"$bogus": 1}}}, None),
    ("POST", "filter=_selector", {"selector": {"$and": 5}}, None),
    ("POST", "filter=_selector", {"selector": {"a": {"$mod": [0, 1]}}}, None),
    ("POST", "filter=_selector", {"selector": {"a": {"$regex": "("}}}, None),
    ("POST", "filter=_selector", {"selector": {"a": {"$exists": 5}}}, None),
    ("POST", "filter=_selector", [], None),
    ("GET", "filter=_doc_ids", None, NO_IDS),
    ("GET", "filter=_doc_ids&doc_ids=5", None, NO_IDS),
    ("GET", "filter=_doc_ids&doc_ids=%5B1%5D", None, NO_IDS),
    ("POST", "filter=_doc_ids", {}, NO_IDS),
    ("POST", "filter=_doc_ids", {"doc_ids": 5}, NO_IDS),
    ("POST", "filter=_doc_ids&feed=longpoll", {"doc_ids": [1]}, NO_IDS),
]


async def _upstream_up(gateway: GatewayHarness) -> bool:
    status, _ = await gateway.peek("GET", "/")
    return status == 200


@pytest.mark.parametrize(("method", "query", "body", "answer"), REFUSED)
async def test_malformed_filters_are_refused_before_the_upstream(
    gateway: GatewayHarness, method: str, query: str, body: Any, answer: dict[str, str] | None
) -> None:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    data = None if body is None else json.dumps(body)
    status, got = await gateway.call(
        method, f"/db/notes/_changes?{query}", device=device, data=data, headers=JSON
    )
    assert status == 400, got
    if answer is not None:
        assert got == answer
    else:
        assert got["error"] == "bad_request" and set(got) == {"error", "reason"}
    assert await _upstream_up(gateway)
    status, changes = await gateway.call("GET", "/db/notes/_changes", device=device)
    assert status == 200, changes


async def test_a_post_changes_needs_json(gateway: GatewayHarness) -> None:
    device = await gateway.new_device()
    await gateway.call("PUT", "/db/notes", device=device)
    status, got = await gateway.call(
        "POST",
        "/db/notes/_changes?filter=_selector",
        device=device,
        data='{"selector":{}}',
        headers={"Content-Type": "text/plain"},
    )
    assert (status, got) == (
        415,
        {"error": "bad_content_type", "reason": "Content-Type must be application/json"},
    )
    assert await _upstream_up(gateway)


@pytest.mark.parametrize("feed", ["normal", "longpoll"])
async def test_well_formed_filters_pass_on_every_upstream(
    gateway: GatewayHarness, feed: str
) -> None:
    device = await gateway.new_device()
    await gateway.call("PUT", "/db/notes", device=device)
    for doc_id, kind in (("a", "note"), ("b", "task")):
        status, _ = await gateway.call(
            "PUT", f"/db/notes/{doc_id}", device=device, json={"k": kind}
        )
        assert status == 201
    selected = {"selector": {"k": {"$eq": "task"}}, "doc_ids": ["a"]}
    for query, body, want in (
        ("filter=_selector", selected, ["b"]),
        ("filter=_doc_ids", {"doc_ids": ["a"]}, ["a"]),
    ):
        status, got = await gateway.call(
            "POST",
            f"/db/notes/_changes?{query}&feed={feed}",
            device=device,
            data=json.dumps(body),
            headers=JSON,
        )
        assert status == 200, got
        assert [row["id"] for row in got["results"]] == want
    status, got = await gateway.call(
        "GET", "/db/notes/_changes?filter=_doc_ids&doc_ids=%5B%22b%22%5D", device=device
    )
    assert [row["id"] for row in got["results"]] == ["b"]
    assert await _upstream_up(gateway)


async def test_a_long_selector_reaches_every_upstream_where_it_reads_it(
    gateway: GatewayHarness,
) -> None:
    """CouchDB takes the selector from the body only, and a query as long as this one breaks it:
    the copy in the query goes to pouchdb-server alone (which refuses a query this long with a
    431, retold in CouchDB's shape, and stays up)."""
    device = await gateway.new_device()
    await gateway.call("PUT", "/db/notes", device=device)
    assert (await gateway.call("PUT", "/db/notes/id000007", device=device, json={}))[0] == 201
    selector = {"_id": {"$in": [f"id{i:06d}" for i in range(2000)]}}
    status, got = await gateway.call(
        "POST",
        "/db/notes/_changes?filter=_selector",
        device=device,
        data=json.dumps({"selector": selector}),
        headers=JSON,
    )
    if gateway.upstream.kind == "pouchdb-server":
        assert status == 431 and set(got) == {"error", "reason"}, got
        assert await _upstream_up(gateway)
        return
    assert status == 200, got
    assert [row["id"] for row in got["results"]] == ["id000007"]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ('limit={"a":1}', "the limit parameter must be a whole number"),
        ("limit=1.5", "the limit parameter must be a whole number"),
        ("limit=", "the limit parameter must be a whole number"),
        ("feed=longpoll&timeout=abc", "the timeout parameter must be a whole number"),
        ("style=weird", "the style parameter must be main_only or all_docs"),
    ],
)
async def test_changes_parameters_couchdb_crashes_on_are_refused(
    gateway: GatewayHarness, query: str, reason: str
) -> None:
    """Found by the fuzz suite: CouchDB 3.5.2 answers these with a 500 (badarg)."""
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes/", device=device))[0] == 201
    status, body = await gateway.call("GET", f"/db/notes/_changes?{query}", device=device)
    assert (status, body) == (400, {"error": "bad_request", "reason": reason})
    status, _ = await gateway.call("GET", "/db/notes/_changes?limit=-1", device=device)
    assert status == 200  # a negative limit is CouchDB's own (no limit)
