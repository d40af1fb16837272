"""The differences a CouchDB client other than PouchDB found (issue 22), each run on the store and
on Apache CouchDB 3.5.2 and compared exactly; each also pins CouchDB's answer.

The documents are written with ``new_edits=false`` and chosen revisions, so the answers hold no
server-made revision hash and can be compared as they are (sequences are not asked for).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.store.conftest import Couch
from tests.store.test_couchdb_fidelity import new_db, on_both

DOCS = [
    {"_id": "a", "_rev": "1-a1", "v": 1},
    {"_id": "a", "_rev": "2-a2", "_revisions": {"start": 2, "ids": ["a2", "a1"]}, "v": 2},
    {"_id": "a", "_rev": "2-a3", "_revisions": {"start": 2, "ids": ["a3", "a1"]}, "v": 3},
    {"_id": "b", "_rev": "1-b1", "v": 4},
    {"_id": "c", "_rev": "1-c1", "_deleted": True},
]
"""``a`` is in conflict (``2-a3`` wins over ``2-a2``), ``c`` is deleted."""


async def seeded(server: Couch) -> str:
    db = await new_db(server)
    status, _ = await server.req("POST", f"/{db}/_bulk_docs", {"new_edits": False, "docs": DOCS})
    assert status == 201
    return db


def qs(**params: Any) -> str:
    return "&".join(f"{name}={quote(json.dumps(value))}" for name, value in params.items())


async def test_all_docs_reads_its_parameters_from_the_post_body(vs_couchdb: list[Couch]) -> None:
    """A client that reads documents with ``{"keys", "include_docs": true}`` in the body before it
    writes them got rows without ``doc`` and took the documents for missing."""

    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        path = f"/{db}/_all_docs"
        bodies: list[dict[str, Any]] = [
            {"keys": ["a", "b", "c", "z"], "include_docs": True, "conflicts": True},
            {"include_docs": "TRUE", "descending": True, "limit": 1, "update_seq": False},
            {"startkey": "b", "skip": 0, "inclusive_end": False, "endkey": "c"},
            {"startkey_docid": "b"},
            {"limit": "1"},
            {"skip": -1},
            {"descending": "yes"},
            {"keys": "a"},
        ]
        answers = [await server.req("POST", path, body) for body in bodies]
        # The query string is read after the body, and wins.
        answers.append(await server.req("POST", f"{path}?include_docs=false", bodies[0]))
        answers.append(await server.req("POST", f"{path}?limit=2", {"limit": 1}))
        return answers

    answers = await on_both(vs_couchdb, scenario)
    assert answers[0] == (
        200,
        {
            "total_rows": 2,
            "offset": None,
            "rows": [
                {
                    "id": "a",
                    "key": "a",
                    "value": {"rev": "2-a3"},
                    "doc": {"_id": "a", "_rev": "2-a3", "v": 3, "_conflicts": ["2-a2"]},
                },
                {
                    "id": "b",
                    "key": "b",
                    "value": {"rev": "1-b1"},
                    "doc": {"_id": "b", "_rev": "1-b1", "v": 4},
                },
                {"id": "c", "key": "c", "value": {"rev": "1-c1", "deleted": True}, "doc": None},
                {"key": "z", "error": "not_found"},
            ],
        },
    )
    assert [row["id"] for row in answers[1][1]["rows"]] == ["b"]
    assert "doc" in answers[1][1]["rows"][0]
    assert answers[2][1]["rows"] == [{"id": "b", "key": "b", "value": {"rev": "1-b1"}}]
    assert answers[3][1]["offset"] == 1
    assert answers[4] == (
        400,
        {"error": "query_parse_error", "reason": 'Invalid value for integer: <<"1">>'},
    )
    assert answers[5][1]["reason"] == "Invalid value for positive integer: -1"
    assert answers[6][1]["reason"] == 'Invalid boolean parameter: "yes"'
    assert answers[7] == (
        400,
        {"error": "bad_request", "reason": "`keys` body member must be an array."},
    )
    assert all("doc" not in row for row in answers[8][1]["rows"])
    assert len(answers[9][1]["rows"]) == 2


async def test_all_docs_key_with_a_one_element_keys(vs_couchdb: list[Couch]) -> None:
    """A one-element ``keys`` reads as that key's ``key`` (the store answered 400 to ``key`` with
    ``keys``); which of the two comes last decides, as CouchDB reads parameters in order."""

    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        path = f"/{db}/_all_docs"
        gets = [
            qs(key="a", keys=["b"]),
            qs(key="a", keys=["z"]),
            qs(keys=["b"], key="a"),
            qs(keys=["b"], key="b"),
            qs(startkey="a", keys=["b"]),
            qs(keys=["b"], startkey="a"),
            qs(keys=["b"], endkey="b"),
            qs(key="a", keys=["b", "a"]),
            qs(keys=[1], key=1.0),
            qs(key="a", keys=[]),
        ]
        answers = [await server.req("GET", f"{path}?{query}") for query in gets]
        answers.append(await server.req("POST", path, {"key": "a", "keys": ["b"]}))
        answers.append(await server.req("POST", path, {"keys": ["b"], "key": "a"}))
        answers.append(await server.req("POST", f"{path}?{qs(keys=['b'])}", {}))
        answers.append(await server.req("POST", f"{path}?{qs(keys=['a'])}", {"keys": ["b"]}))
        return answers

    answers = await on_both(vs_couchdb, scenario)
    b_row = {"id": "b", "key": "b", "value": {"rev": "1-b1"}}
    incompatible = (
        400,
        {
            "error": "query_parse_error",
            "reason": "`keys` is incompatible with `key`, `start_key` and `end_key`",
        },
    )
    assert answers[0] == (200, {"total_rows": 2, "offset": None, "rows": [b_row]})
    assert answers[1][1]["rows"] == [{"key": "z", "error": "not_found"}]
    assert answers[2] == incompatible
    assert answers[3][1]["rows"] == [b_row]
    assert answers[4][1]["rows"] == [b_row]
    assert answers[5] == incompatible
    assert answers[6][1]["rows"] == [b_row]
    assert answers[7] == incompatible
    assert answers[8] == incompatible
    assert answers[9][1]["rows"] == []
    assert answers[10][1]["rows"] == [b_row]
    assert answers[11] == incompatible
    assert answers[12] == (200, {"total_rows": 2, "offset": 1, "rows": [b_row]})
    assert answers[13] == incompatible


async def test_latest_with_a_losing_leaf_answers_the_winner(vs_couchdb: list[Couch]) -> None:
    """``GET /db/doc?rev=R&latest=true``: CouchDB 3.5.2 answers the winner for any ``R`` (a
    losing leaf, an ancestor, even a revision it does not have); the store answered ``R``."""

    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        answers = [
            await server.req("GET", f"/{db}/a?rev={rev}&latest=true")
            for rev in ("2-a2", "1-a1", "2-a3", "9-nope")
        ]
        answers.append(await server.req("GET", f"/{db}/a?rev=2-a2&latest=true&conflicts=true"))
        answers.append(await server.req("GET", f"/{db}/a?rev=bogus&latest=true"))
        answers.append(await server.req("GET", f"/{db}/c?rev=1-c1&latest=true"))
        answers.append(await server.req("GET", f"/{db}/a?rev=2-a2&latest=false"))
        return answers

    answers = await on_both(vs_couchdb, scenario)
    winner = (200, {"_id": "a", "_rev": "2-a3", "v": 3})
    assert answers[:4] == [winner] * 4
    assert answers[4] == (200, {**winner[1], "_conflicts": ["2-a2"]})
    assert answers[5] == (400, {"error": "bad_request", "reason": "Invalid rev format"})
    assert answers[6] == (404, {"error": "not_found", "reason": "deleted"})
    assert answers[7] == (200, {"_id": "a", "_rev": "2-a2", "v": 2})
