"""``_changes`` in every feed and option, on the store and on CouchDB 3.5.2, compared.

Sequences are opaque (CouchDB's are strings ``"N-…"``, the store's integers, both only ever
handed back): they are compared as "a seq"; every other byte of the answers is compared.
"""

from __future__ import annotations

import json
from typing import Any

from tests.store.conftest import Couch
from tests.store.test_couchdb_fidelity import new_db, on_both

SEQ_KEYS = ("seq", "last_seq")


def opaque(value: Any) -> Any:
    """The answer with every sequence replaced by the word "seq"."""
    if isinstance(value, dict):
        return {k: "seq" if k in SEQ_KEYS else opaque(v) for k, v in value.items()}
    if isinstance(value, list):
        return [opaque(v) for v in value]
    return value


async def seeded(server: Couch) -> str:
    db = await new_db(server)
    docs = [
        {"_id": "a", "_rev": "1-a", "v": 1},
        {"_id": "b", "_rev": "2-b", "_revisions": {"start": 2, "ids": ["b", "a"]}, "v": 2},
        {"_id": "b", "_rev": "2-c", "_revisions": {"start": 2, "ids": ["c", "a"]}, "v": 3},
        {"_id": "c", "_rev": "1-c", "_deleted": True},
        {"_id": "_design/d", "_rev": "1-d", "views": {}},
    ]
    for doc in docs:  # one request each: the order of changes is then the order written
        status, _ = await server.req(
            "POST", f"/{db}/_bulk_docs", {"docs": [doc], "new_edits": False}
        )
        assert status == 201
    return db


QUERIES = [
    "",
    "?style=all_docs",
    "?include_docs=true",
    "?include_docs=true&conflicts=true&style=all_docs",
    "?limit=1",
    "?limit=2",
    "?limit=0",
    "?limit=-1",
    "?descending=true",
    "?descending=true&limit=2",
    "?since=now",
    "?since=now&limit=1",
    "?filter=_doc_ids&doc_ids=%5B%22b%22%5D",
    "?filter=_design",
    "?include_docs=yes&descending=1",
    "?feed=longpoll",
    "?feed=longpoll&since=now&timeout=50",
    "?feed=bogus",
    "?since=bogus",
    "?filter=_doc_ids",
    "?filter=nope",
    "?filter=missing/f",
    "?filter=_view",
    "?heartbeat=x",
]


async def test_normal_and_longpoll_feeds(vs_couchdb: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        answers = []
        for query in QUERIES:
            status, body = await server.req("GET", f"/{db}/_changes{query}")
            answers.append((query, status, opaque(body)))
        return answers

    answers = await on_both(vs_couchdb, scenario)
    by_query = {query: body for query, _, body in answers}
    assert [r["id"] for r in by_query[""]["results"]] == ["a", "b", "c", "_design/d"]
    assert by_query["?limit=2"]["pending"] == 2 and by_query["?limit=0"]["results"] == []


async def test_posted_filters(vs_couchdb: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        answers = []
        for query, body in (
            ("?filter=_doc_ids", {"doc_ids": ["a", "c"]}),
            ("?filter=_doc_ids&limit=1", {"doc_ids": ["a", "c"]}),
            ("?filter=_selector", {"selector": {"v": {"$gt": 1}}}),
            ("?filter=_selector&include_docs=true", {"selector": {"v": 1}}),
            ("?filter=_selector", {}),
            ("?filter=_selector", {"selector": 5}),
            ("", {"since": 0}),
            ("?filter=_selector", {"selector": {"$bogus": 1}}),
        ):
            status, answer = await server.req("POST", f"/{db}/_changes{query}", body)
            answers.append((query, status, opaque(answer)))
        return answers

    answers = await on_both(vs_couchdb, scenario)
    assert answers[2][2]["results"][0]["id"] == "b"
    assert answers[4][1] == answers[5][1] == 400


async def feed_lines(server: Couch, path: str) -> list[Any]:
    resp, body = await server.response("GET", path)
    assert resp.status == 200
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


async def test_continuous_feed(vs_couchdb: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        return [
            opaque(await feed_lines(server, f"/{db}/_changes?feed=continuous&timeout=50{q}"))
            for q in ("", "&limit=2", "&since=now", "&style=all_docs&include_docs=true")
        ] + [opaque(await feed_lines(server, f"/{db}/_changes?feed=live&timeout=50&limit=1"))]

    every, limited, now, _, live = await on_both(vs_couchdb, scenario)
    assert [row.get("id") for row in every] == ["a", "b", "c", "_design/d", None]
    assert limited[-1] == {"last_seq": "seq", "pending": 2} and now == [
        {"last_seq": "seq", "pending": 0}
    ]
    assert len(live) == 2


async def test_eventsource_feed(vs_couchdb: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        resp, body = await server.response(
            "GET", f"/{db}/_changes?feed=eventsource&timeout=50&limit=2"
        )
        events = []
        for block in body.decode().split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if fields:
                events.append((sorted(fields), opaque(json.loads(fields["data"]))))
        return resp.headers["Content-Type"], events

    content_type, events = await on_both(vs_couchdb, scenario)
    assert content_type == "text/event-stream"
    assert [data["id"] for _, data in events] == ["a", "b"]


async def test_non_numeric_limit_is_a_400(store: Couch) -> None:
    """CouchDB answers 500 (badarg) for ``limit=x``; the store refuses it in CouchDB's shape."""
    db = await new_db(store)
    assert await store.req("GET", f"/{db}/_changes?limit=x") == (
        400,
        {"error": "bad_request", "reason": "Invalid value for integer: 'limit'"},
    )
