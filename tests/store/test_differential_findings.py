"""What the long differential run found (issue 22, docs/couchdb-differences.md), each pinned as a
short request sequence replayed on the store and on Apache CouchDB 3.5.2.

Each sequence goes through :mod:`tests.store.differential`'s transport and normalisation (only
sequences' opaque part and server-made hashes are made equal), so the answers are compared
exactly as the differential compares them; each test also pins what CouchDB answered, so a
CouchDB that changes its mind is noticed rather than followed.
"""

from __future__ import annotations

from typing import Any

from tests.store.conftest import Couch, fresh_db_name
from tests.store.differential import Normalizer, Request, normalized, raw_transport, send


async def replayed(pair: list[Couch], requests: list[Request]) -> list[tuple[int, Any]]:
    """``requests`` on a fresh database of each server; the answers must be equal."""
    answers = []
    for server in pair:
        db = fresh_db_name("find")
        assert (await server.req("PUT", f"/{db}?q=1"))[0] == 201
        headers = {"Authorization": server.session.headers["Authorization"]}
        transport = raw_transport(f"{server.url}/{db}", headers)
        norm = Normalizer()
        try:
            answers.append([normalized(await send(r, transport), norm) for r in requests])
        finally:
            await server.req("DELETE", f"/{db}")
    store, couchdb = answers
    for request, got, expected in zip(requests, store, couchdb, strict=True):
        assert got == expected, f"{request.describe()}: store {got}, CouchDB {expected}"
    return couchdb


def replicated(*docs: dict[str, Any]) -> Request:
    return Request("POST", "/_bulk_docs", body={"new_edits": False, "docs": list(docs)})


def changes(*query: tuple[str, str], selector: dict[str, Any] | None = None) -> Request:
    if selector is None:
        return Request("GET", "/_changes", query)
    body = {"selector": selector}
    return Request("POST", "/_changes", (("filter", "_selector"), *query), body=body)


def feed(answer: tuple[int, Any]) -> tuple[list[str], Any, Any]:
    """A normal feed's ids, last_seq and pending."""
    status, body = answer
    assert status == 200
    return [row["id"] for row in body["results"]], body["last_seq"], body["pending"]


async def test_changes_through_a_selector_stops_where_couchdbs_collector_does(
    vs_couchdb: list[Couch],
) -> None:
    """A ``_selector`` feed with a ``limit`` stops at the first row read once the limit is spent:
    a row the selector passes over moves ``last_seq`` (the store reported the last row sent),
    ``limit=0`` reports the rows passed over before the first match, and a descending read
    reports the oldest row it read and what is left after its stop (the store listed this as a
    deliberate difference)."""
    odd = {"v": 1}
    answers = await replayed(
        vs_couchdb,
        [
            replicated(
                {"_id": "a", "_rev": "1-x", "v": 1},
                {"_id": "b", "_rev": "1-x", "v": 2},
                {"_id": "c", "_rev": "1-x", "v": 1},
                {"_id": "d", "_rev": "1-x", "v": 3},
            ),
            changes(("limit", "1"), selector=odd),
            changes(("limit", "2"), selector=odd),
            changes(("limit", "0"), selector=odd),
            changes(("limit", "0"), selector={"v": 2}),
            changes(("limit", "1"), ("descending", "true"), selector=odd),
            changes(("limit", "0"), ("descending", "true"), selector=odd),
            changes(("descending", "true"), selector={"v": 3}),
            changes(("limit", "2"), ("feed", "longpoll"), ("timeout", "10"), selector=odd),
            Request(
                "POST",
                "/_changes",
                (
                    ("filter", "_selector"),
                    ("feed", "continuous"),
                    ("limit", "1"),
                    ("timeout", "10"),
                ),
                body={"selector": odd},
                read="lines",
            ),
        ],
    )
    assert feed(answers[1]) == (["a"], 2, 3)
    assert feed(answers[2]) == (["a", "c"], 4, 1)
    assert feed(answers[3]) == ([], 0, 4)
    assert feed(answers[4]) == ([], 1, 3)
    assert feed(answers[5]) == (["c"], 2, 2)
    assert feed(answers[6]) == ([], 4, 3)
    assert feed(answers[7]) == (["d"], 1, 0)
    assert feed(answers[8]) == (["a", "c"], 4, 1)
    assert answers[9][1][-1] == {"last_seq": 2, "pending": 3}


async def test_open_revs_empty_reads_as_a_plain_get(vs_couchdb: list[Couch]) -> None:
    """``open_revs=[]`` (with ``latest`` or not) names no revision: CouchDB answers the document
    as a plain ``GET`` does, with every option a plain ``GET`` takes; the store answered ``[]``."""
    answers = await replayed(
        vs_couchdb,
        [
            replicated(
                {"_id": "a", "_rev": "2-xy", "_revisions": {"start": 2, "ids": ["xy", "x"]}},
                {"_id": "a", "_rev": "1-y", "v": 2},
                {"_id": "b", "_rev": "1-x", "_deleted": True},
            ),
            Request("GET", "/a", (("open_revs", "[]"), ("latest", "true"))),
            Request("GET", "/a", (("open_revs", "[]"), ("conflicts", "true"), ("revs", "true"))),
            Request("GET", "/b", (("open_revs", "[]"), ("latest", "true"))),
        ],
    )
    assert answers[1] == (200, {"_id": "a", "_rev": "2-xy"})
    assert answers[2] == (
        200,
        {
            "_id": "a",
            "_rev": "2-xy",
            "_revisions": {"start": 2, "ids": ["xy", "x"]},
            "_conflicts": ["1-y"],
        },
    )
    assert answers[3] == (404, {"error": "not_found", "reason": "deleted"})


async def test_deleting_a_deleted_document_without_rev_is_a_conflict(
    vs_couchdb: list[Couch],
) -> None:
    """``{"_id", "_deleted": true}`` without ``_rev`` on a deleted document: CouchDB answers a
    conflict (by ``_bulk_docs``, ``PUT`` or ``POST``); the store wrote another deletion. A body
    without ``_rev`` still re-creates the document."""
    conflict = {"id": "a", "error": "conflict", "reason": "Document update conflict."}
    answers = await replayed(
        vs_couchdb,
        [
            replicated({"_id": "a", "_rev": "1-x", "_deleted": True}),
            Request("POST", "/_bulk_docs", body={"docs": [{"_id": "a", "_deleted": True}]}),
            Request("PUT", "/a", body={"_deleted": True, "v": 1}),
            Request("POST", "", body={"_id": "a", "_deleted": True}),
            Request("GET", "/a", (("open_revs", "all"),)),
            Request("POST", "/_bulk_docs", body={"docs": [{"_id": "a", "v": 2}]}),
            Request("GET", "/a"),
        ],
    )
    assert answers[1] == (201, [conflict])
    assert answers[2] == answers[3] == (409, {key: conflict[key] for key in ("error", "reason")})
    assert answers[4] == (200, [{"ok": {"_id": "a", "_rev": "1-x", "_deleted": True}}])
    assert answers[6] == (200, {"_id": "a", "_rev": "2-#1", "v": 2})


async def test_bulk_get_latest_lists_leaves_in_the_key_trees_order(
    vs_couchdb: list[Couch],
) -> None:
    """``_bulk_get?latest=true`` with a ``rev`` answers the leaves under it in the key tree's
    order (depth first, children by id), where ``GET ?open_revs=[...]&latest=true`` sorts them;
    the store sorted both."""
    answers = await replayed(
        vs_couchdb,
        [
            replicated(
                {
                    "_id": "a",
                    "_rev": "4-xyxy",
                    "_revisions": {"start": 4, "ids": ["xyxy", "xyx", "xy", "x"]},
                },
                {
                    "_id": "a",
                    "_rev": "3-xyy",
                    "_revisions": {"start": 3, "ids": ["xyy", "xy", "x"]},
                },
                {
                    "_id": "a",
                    "_rev": "4-yyyy",
                    "_revisions": {"start": 4, "ids": ["yyyy", "yyy", "yy", "y"]},
                },
            ),
            Request(
                "POST", "/_bulk_get", (("latest", "true"),), {"docs": [{"id": "a", "rev": "1-x"}]}
            ),
            Request("GET", "/a", (("open_revs", '["1-x"]'), ("latest", "true"))),
        ],
    )
    assert answers[1] == (
        200,
        {
            "results": [
                {
                    "id": "a",
                    "docs": [
                        {"ok": {"_id": "a", "_rev": "4-xyxy"}},
                        {"ok": {"_id": "a", "_rev": "3-xyy"}},
                    ],
                }
            ]
        },
    )
    assert answers[2] == (
        200,
        [{"ok": {"_id": "a", "_rev": "3-xyy"}}, {"ok": {"_id": "a", "_rev": "4-xyxy"}}],
    )


def seqs(answer: tuple[int, Any]) -> list[tuple[str, int]]:
    status, body = answer
    assert status == 200
    return [(row["id"], row["seq"]) for row in body["results"]]


async def test_a_batch_with_attachments_writes_only_new_leaves(vs_couchdb: list[Couch]) -> None:
    """A ``new_edits=false`` batch in which any document has attachments is checked first by
    CouchDB: a revision that is no new leaf (an ancestor's body, a leaf it had) is answered ok
    and not written, so it is no change; without attachments in the batch an ancestor takes its
    body, a change. The store always wrote it: its sequences ran one high."""
    hi = {"f.txt": {"content_type": "text/plain", "data": "aGk="}}
    answers = await replayed(
        vs_couchdb,
        [
            replicated(
                {"_id": "a", "_rev": "2-xx", "_revisions": {"start": 2, "ids": ["xx", "x"]}},
                {"_id": "b", "_rev": "2-xx", "_revisions": {"start": 2, "ids": ["xx", "x"]}},
            ),
            replicated(
                {"_id": "a", "_rev": "1-x", "v": 1}, {"_id": "z", "_rev": "1-x", "_attachments": hi}
            ),
            Request("GET", "/a", (("rev", "1-x"),)),
            replicated({"_id": "b", "_rev": "1-x", "v": 1}),
            Request("GET", "/b", (("rev", "1-x"),)),
            changes(),
        ],
    )
    assert answers[2] == (404, {"error": "not_found", "reason": "missing"})
    assert answers[4] == (200, {"_id": "b", "_rev": "1-x", "v": 1})
    assert seqs(answers[5]) == [("a", 1), ("z", 3), ("b", 4)]


async def test_a_lone_root_joins_the_ancestors_a_later_path_names(
    vs_couchdb: list[Couch],
) -> None:
    """A revision written without ``_revisions`` is a root of its own; written again with its
    ancestors, CouchDB's key tree joins it under them (a change, the root keeping its body), so
    ``latest`` from an ancestor finds it. The store kept it apart and answered the ancestor
    missing."""
    answers = await replayed(
        vs_couchdb,
        [
            replicated({"_id": "a", "_rev": "2-yy", "v": 1}),
            replicated(
                {
                    "_id": "a",
                    "_rev": "2-yy",
                    "_revisions": {"start": 2, "ids": ["yy", "y"]},
                    "_deleted": True,
                }
            ),
            Request(
                "POST", "/_bulk_get", (("latest", "true"),), {"docs": [{"id": "a", "rev": "1-y"}]}
            ),
            changes(),
        ],
    )
    assert answers[2] == (
        200,
        {"results": [{"id": "a", "docs": [{"ok": {"_id": "a", "_rev": "2-yy", "v": 1}}]}]},
    )
    assert seqs(answers[3]) == [("a", 2)]


async def test_deleting_an_attachment_the_document_lacks_without_rev(
    vs_couchdb: list[Couch],
) -> None:
    """``DELETE /db/doc/att`` naming no revision, of a live document without that attachment:
    CouchDB opens the document and answers the attachment missing (found by the long run); the
    store answered a conflict, which stays the answer when the attachment is there."""
    answers = await replayed(
        vs_couchdb,
        [
            replicated({"_id": "a", "_rev": "1-x", "_attachments": {"f.txt": {"data": "aGk="}}}),
            Request("DELETE", "/a/g.txt"),
            Request("DELETE", "/a/f.txt"),
        ],
    )
    assert answers[1] == (404, {"error": "not_found", "reason": "Document is missing attachment"})
    assert answers[2] == (409, {"error": "conflict", "reason": "Document update conflict."})


async def test_seq_interval_counts_down_the_limit(vs_couchdb: list[Couch]) -> None:
    """With ``seq_interval`` a row keeps its ``seq`` when the feed's remaining ``limit`` is a
    multiple of the interval (CouchDB's default limit, 10^15, when none is given): the store
    counted from the first row whatever the limit (found by the long run)."""
    answers = await replayed(
        vs_couchdb,
        [
            replicated(
                *(
                    {"_id": i, "_rev": "1-x", "v": v}
                    for i, v in zip("abcd", [9, 1, 7, 8], strict=True)
                )
            ),
            changes(("limit", "2"), ("seq_interval", "3"), selector={"v": {"$gt": 4}}),
            changes(("limit", "3"), ("seq_interval", "3")),
            changes(("seq_interval", "3")),
            Request(
                "GET",
                "/_changes",
                (("feed", "continuous"), ("limit", "3"), ("seq_interval", "2"), ("timeout", "10")),
                read="lines",
            ),
        ],
    )
    assert [row["seq"] for row in answers[1][1]["results"]] == [None, None]
    assert [row["seq"] for row in answers[2][1]["results"]] == [1, None, None]
    assert [row["seq"] for row in answers[3][1]["results"]] == [None, 2, None, None]
    assert [row.get("seq") for row in answers[4][1][:3]] == [None, 2, None]


async def test_an_empty_atts_since_sends_every_attachment(vs_couchdb: list[Couch]) -> None:
    """``GET /db/doc?atts_since=[]`` names no revision the client has: CouchDB sends every
    attachment's data written above position 0 (``_bulk_get``'s empty ``atts_since`` still sends
    stubs); the store sent stubs (found by the long run)."""
    hello = {"f.txt": {"content_type": "text/plain", "data": "aGVsbG8="}}
    answers = await replayed(
        vs_couchdb,
        [
            Request("PUT", "/a", body={"_attachments": hello}),
            replicated({"_id": "b", "_rev": "1-x", "_attachments": hello}),
            Request("GET", "/b", (("atts_since", "[]"),)),
            Request("GET", "/a", (("atts_since", "[]"),)),
            Request("POST", "/_bulk_get", body={"docs": [{"id": "a", "atts_since": []}]}),
        ],
    )
    assert answers[2][1]["_attachments"]["f.txt"]["stub"] is True  # written at position 0
    assert answers[3][1]["_attachments"]["f.txt"]["data"] == "aGVsbG8="
    (result,) = answers[4][1]["results"]
    assert result["docs"][0]["ok"]["_attachments"]["f.txt"]["stub"] is True


async def test_a_selector_with_style_all_docs_lists_the_leaves_that_pass(
    vs_couchdb: list[Couch],
) -> None:
    """``style=all_docs`` through a ``_selector``: CouchDB tries the selector on every leaf and
    lists only those that pass (the row's doc is still the winner); the store tried the winner
    and listed every leaf (found by the long run)."""
    answers = await replayed(
        vs_couchdb,
        [
            replicated(
                {"_id": "a", "_rev": "1-y", "v": 1},
                {"_id": "a", "_rev": "1-x", "v": 9},
                {"_id": "b", "_rev": "1-y", "v": 9},
                {"_id": "b", "_rev": "1-x", "v": 8},
            ),
            changes(("style", "all_docs"), selector={"v": {"$gt": 4}}),
            changes(("style", "all_docs"), ("include_docs", "true"), selector={"v": 9}),
        ],
    )
    assert [(r["id"], r["changes"]) for r in answers[1][1]["results"]] == [
        ("a", [{"rev": "1-x"}]),
        ("b", [{"rev": "1-y"}, {"rev": "1-x"}]),
    ]
    assert [r["doc"]["_rev"] for r in answers[2][1]["results"]] == ["1-y", "1-y"]
