"""The same scenarios against the embedded store and the reference server, compared.

Replicated writes (``new_edits=false``) fix the revision ids, so winners, conflicts, ``_revs_diff``
and ``_changes`` can be compared exactly. Interactive writes produce server-specific hashes, so
there we compare shapes and positions. Where pouchdb-server deviates from CouchDB the test
follows CouchDB and says so.
"""

from __future__ import annotations

import base64
from typing import Any

from tests.store.conftest import Couch, fresh_db_name

BRANCHES: list[dict[str, Any]] = [
    {"_id": "doc", "_rev": "3-c", "_revisions": {"start": 3, "ids": ["c", "b", "a"]}, "v": "c"},
    {"_id": "doc", "_rev": "2-x", "_revisions": {"start": 2, "ids": ["x", "a"]}, "v": "x"},
    {
        "_id": "doc",
        "_rev": "4-d",
        "_deleted": True,
        "_revisions": {"start": 4, "ids": ["d", "y", "w", "a"]},
    },
    {"_id": "doc", "_rev": "3-z", "_revisions": {"start": 3, "ids": ["z", "b", "a"]}, "v": "z"},
    {"_id": "other", "_rev": "1-o", "v": "o"},
    {"_id": "gone", "_rev": "2-g", "_deleted": True, "_revisions": {"start": 2, "ids": ["g", "f"]}},
]


# Test databases are made with one shard (``?q=1``, which the store and pouchdb-server ignore):
# across CouchDB's shards the order of _changes rows is not a contract, within one it is.


async def seeded(server: Couch) -> str:
    db = fresh_db_name()
    assert (await server.req("PUT", f"/{db}?q=1"))[0] == 201
    status, body = await server.req(
        "POST", f"/{db}/_bulk_docs", {"docs": BRANCHES, "new_edits": False}
    )
    assert status == 201 and body == []
    return db


async def on_both(both: list[Couch], scenario: Any) -> Any:
    """Run ``scenario(server)`` on each server and assert the answers are equal."""
    answers = [await scenario(server) for server in both]
    assert answers[0] == answers[1], f"embedded vs {both[1].kind}"
    return answers[0]


async def test_winner_conflicts_and_deleted_conflicts(both: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        _, doc = await server.req("GET", f"/{db}/doc?conflicts=true")
        gone_status, _ = await server.req("GET", f"/{db}/gone")
        return doc, gone_status

    doc, gone_status = await on_both(both, scenario)
    assert doc["_rev"] == "3-z" and doc["_conflicts"] == ["3-c", "2-x"]
    assert gone_status == 404


async def test_deleted_conflicts_and_deleted_reason_follow_couchdb(store: Couch) -> None:
    """pouchdb-server ignores ``deleted_conflicts`` and answers "missing" for a deleted doc;
    CouchDB lists deleted losing leaves and says "deleted"."""
    db = await seeded(store)
    _, doc = await store.req("GET", f"/{db}/doc?deleted_conflicts=true")
    assert doc["_deleted_conflicts"] == ["4-d"]
    assert await store.req("GET", f"/{db}/gone") == (
        404,
        {"error": "not_found", "reason": "deleted"},
    )


async def test_open_revs_and_revisions(both: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        _, every = await server.req("GET", f"/{db}/doc?open_revs=all&revs=true")
        _, some = await server.req("GET", f'/{db}/doc?open_revs=["3-c","9-nope"]')
        _, latest = await server.req("GET", f'/{db}/doc?open_revs=["2-w"]&latest=true')
        _, old = await server.req("GET", f"/{db}/doc?rev=3-c&revs=true")
        return (
            sorted(every, key=lambda r: r["ok"]["_rev"]),
            some,
            sorted(r["ok"]["_rev"] for r in latest),
            old,
        )

    every, some, latest, old = await on_both(both, scenario)
    assert [r["ok"]["_rev"] for r in every] == ["2-x", "3-c", "3-z", "4-d"]
    assert some[1] == {"missing": "9-nope"}
    assert latest == ["4-d"]
    assert old["_revisions"] == {"start": 3, "ids": ["c", "b", "a"]}


async def test_revs_diff(both: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        _, diff = await server.req(
            "POST",
            f"/{db}/_revs_diff",
            {"doc": ["3-c", "5-new"], "other": ["1-o"], "fresh": ["1-q", "2-r"]},
        )
        return {doc_id: entry["missing"] for doc_id, entry in diff.items()}

    diff = await on_both(both, scenario)
    assert diff == {"doc": ["5-new"], "fresh": ["1-q", "2-r"]}


async def test_revs_diff_follows_couchdb(store: Couch) -> None:
    """pouchdb-server reports revisions it knows only by id (``2-b``) as missing and never sends
    ``possible_ancestors``; CouchDB knows every revision in the tree and lists older leaves."""
    db = await seeded(store)
    _, diff = await store.req("POST", f"/{db}/_revs_diff", {"doc": ["2-b", "4-new", "5-new"]})
    assert diff["doc"]["missing"] == ["4-new", "5-new"]
    assert sorted(diff["doc"]["possible_ancestors"]) == ["2-x", "3-c", "3-z", "4-d"]
    _, diff = await store.req("POST", f"/{db}/_revs_diff", {"doc": ["3-new"]})
    assert diff["doc"]["possible_ancestors"] == ["2-x"]


async def test_changes_contents(both: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        _, feed = await server.req("GET", f"/{db}/_changes?style=all_docs")
        _, docs = await server.req("GET", f"/{db}/_changes?include_docs=true&conflicts=true")
        _, one = await server.req("POST", f"/{db}/_changes?filter=_doc_ids", {"doc_ids": ["other"]})
        _, limited = await server.req("GET", f"/{db}/_changes?limit=1")
        _, backwards = await server.req("GET", f"/{db}/_changes?descending=true")

        def rows(page: Any) -> Any:
            """Order of documents written in one request, and of leaves, is not a contract."""
            return sorted(
                (
                    row["id"],
                    sorted(c["rev"] for c in row["changes"]),
                    row.get("deleted", False),
                    row.get("doc"),
                )
                for row in page["results"]
            )

        return (
            rows(feed),
            rows(docs),
            rows(one),
            len(limited["results"]),
            sorted(r["id"] for r in backwards["results"]),
        )

    feed, docs, one, limited, backwards = await on_both(both, scenario)
    assert feed[0] == ("doc", ["2-x", "3-c", "3-z", "4-d"], False, None)
    assert feed[1] == ("gone", ["2-g"], True, None)
    assert docs[0][3]["_conflicts"] == ["3-c", "2-x"]
    assert one == [("other", ["1-o"], False, None)]
    assert limited == 1 and backwards == ["doc", "gone", "other"]


async def test_changes_order_follows_couchdb(store: Couch) -> None:
    """Leaves in ``style=all_docs`` come winner first, then CouchDB's leaf order; documents in
    the order of their latest change, the documents of one batch in the order of their ids, as
    CouchDB 3.5.2 numbers them (pouchdb-server orders all of these differently)."""
    db = await seeded(store)
    _, feed = await store.req("GET", f"/{db}/_changes?style=all_docs")
    assert [r["id"] for r in feed["results"]] == ["doc", "gone", "other"]
    assert feed["results"][0]["changes"] == [
        {"rev": "3-z"},
        {"rev": "3-c"},
        {"rev": "2-x"},
        {"rev": "4-d"},
    ]
    _, backwards = await store.req("GET", f"/{db}/_changes?descending=true")
    assert [r["id"] for r in backwards["results"]] == ["other", "gone", "doc"]


async def test_changes_since_resumes_after_a_seq(both: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = fresh_db_name()
        await server.req("PUT", f"/{db}?q=1")
        for doc_id in ("doc", "other", "gone", "other"):
            _, doc = await server.req("GET", f"/{db}/{doc_id}")
            await server.req(
                "PUT", f"/{db}/{doc_id}", {"_rev": doc["_rev"]} if "_rev" in doc else {}
            )
        _, first = await server.req("GET", f"/{db}/_changes?limit=2")
        since = first["last_seq"]
        _, rest = await server.req("GET", f"/{db}/_changes?since={since}")
        _, now = await server.req("GET", f"/{db}/_changes?since=now")
        return [r["id"] for r in first["results"] + rest["results"]], now["results"]

    ids, now = await on_both(both, scenario)
    assert ids == ["doc", "gone", "other"] and now == []


async def test_interactive_edits_and_their_errors(both: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = fresh_db_name()
        await server.req("PUT", f"/{db}?q=1")
        s1, r1 = await server.req("PUT", f"/{db}/a", {"n": 1})
        s2, r2 = await server.req("PUT", f"/{db}/a", {"n": 2, "_rev": r1["rev"]})
        stale_status, stale = await server.req("PUT", f"/{db}/a", {"n": 3, "_rev": r1["rev"]})
        no_rev_status, no_rev = await server.req("PUT", f"/{db}/a", {"n": 3})
        s3, deleted = await server.req("DELETE", f"/{db}/a?rev={r2['rev']}")
        after = await server.req("GET", f"/{db}/a")
        missing = await server.req("GET", f"/{db}/nope")
        s4, again = await server.req("PUT", f"/{db}/a", {"n": 4})
        _, info = await server.req("GET", f"/{db}")
        return (
            [s1, s2, s3, s4],
            [r["rev"].split("-")[0] for r in (r1, r2, deleted, again)],
            (stale_status, stale["error"]),
            (no_rev_status, no_rev["error"]),
            after[0],
            missing,
            info["doc_count"],
        )

    statuses, positions, stale, no_rev, after, missing, counts = await on_both(both, scenario)
    assert statuses == [201, 201, 200, 201] and positions == ["1", "2", "3", "4"]
    assert stale == no_rev == (409, "conflict")
    assert after == 404
    assert missing == (404, {"error": "not_found", "reason": "missing"})
    assert counts == 1


async def test_bulk_docs_per_document_errors(both: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = fresh_db_name()
        await server.req("PUT", f"/{db}?q=1")
        _, first = await server.req("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "a"}]})
        _, answer = await server.req(
            "POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "a"}, {"_id": "b"}, {"_id": "b"}]}
        )
        return [first[0]["ok"]] + [row.get("error") or row["rev"].split("-")[0] for row in answer]

    assert await on_both(both, scenario) == [True, "conflict", "1", "conflict"]


async def test_attachments_digests_stubs_and_old_revisions(both: list[Couch]) -> None:
    payload = b"\x00binary\xffpayload" * 50

    async def scenario(server: Couch) -> Any:
        db = fresh_db_name()
        await server.req("PUT", f"/{db}?q=1")
        att = {
            "content_type": "application/octet-stream",
            "data": base64.b64encode(payload).decode(),
        }
        _, r1 = await server.req("PUT", f"/{db}/d", {"_attachments": {"a.bin": att}})
        _, doc1 = await server.req("GET", f"/{db}/d")
        stub = doc1["_attachments"]["a.bin"]
        _, r2 = await server.req(
            "PUT",
            f"/{db}/d",
            {
                "_rev": r1["rev"],
                "x": 1,
                "_attachments": {
                    "a.bin": stub,
                    "t.txt": {
                        "content_type": "text/plain",
                        "data": base64.b64encode(b"hi").decode(),
                    },
                },
            },
        )
        _, doc2 = await server.req("GET", f"/{db}/d")
        # CouchDB stores text/* gzipped and digests those bytes; pouchdb-server digests the
        # plain ones. The store follows CouchDB (test_compressible_attachment_digests).
        doc2["_attachments"]["t.txt"].pop("digest")
        _, inline = await server.req("GET", f"/{db}/d?attachments=true")
        _, body = await server.req("GET", f"/{db}/d/a.bin", raw=True)
        _, r3 = await server.req(
            "PUT",
            f"/{db}/d/t.txt?rev={r2['rev']}",
            data=b"new text",
            headers={"Content-Type": "text/plain"},
        )
        _, old = await server.req("GET", f"/{db}/d/t.txt?rev={r2['rev']}", raw=True)
        _, new = await server.req("GET", f"/{db}/d/t.txt", raw=True)
        _, r4 = await server.req("DELETE", f"/{db}/d/a.bin?rev={r3['rev']}")
        _, doc4 = await server.req("GET", f"/{db}/d")
        gone_status, gone_body = await server.req("GET", f"/{db}/d/a.bin")
        gone = (gone_status, gone_body["error"])
        return (
            stub,
            doc2["_attachments"],
            {k: v.get("data") for k, v in inline["_attachments"].items()},
            body,
            (old, new),
            r4["rev"].split("-")[0],
            sorted(doc4["_attachments"]),
            gone,
        )

    stub, atts2, inline, body, versions, pos, names, gone = await on_both(both, scenario)
    assert (
        stub["digest"]
        == "md5-" + base64.b64encode(__import__("hashlib").md5(payload).digest()).decode()
    )
    assert stub["stub"] is True and stub["revpos"] == 1 and stub["length"] == len(payload)
    assert atts2["a.bin"]["revpos"] == 1 and atts2["t.txt"]["revpos"] == 2
    assert base64.b64decode(inline["a.bin"]) == payload
    assert body == payload and versions == (b"hi", b"new text")
    assert pos == "4" and names == ["t.txt"]
    assert gone == (404, "not_found")


async def test_atts_since_follows_couchdb(store: Couch) -> None:
    """``atts_since`` sends only attachments newer than the given revisions (CouchDB); the
    reference pouchdb-server ignores it for a document GET."""
    db = fresh_db_name()
    await store.req("PUT", f"/{db}?q=1")
    one = {"content_type": "text/plain", "data": base64.b64encode(b"one").decode()}
    _, r1 = await store.req("PUT", f"/{db}/d", {"_attachments": {"a": one}})
    _, doc = await store.req("GET", f"/{db}/d")
    await store.req(
        "PUT",
        f"/{db}/d",
        {"_rev": r1["rev"], "_attachments": {"a": doc["_attachments"]["a"], "b": one}},
    )
    _, since = await store.req("GET", f'/{db}/d?atts_since=["{r1["rev"]}"]')
    assert {k: "data" in v for k, v in since["_attachments"].items()} == {"a": False, "b": True}


async def test_all_docs_ranges_keys_and_deleted(both: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = fresh_db_name()
        await server.req("PUT", f"/{db}?q=1")
        docs = [{"_id": i, "v": i} for i in ("a", "b", "c", "d", "e")]
        _, written = await server.req("POST", f"/{db}/_bulk_docs", {"docs": docs})
        await server.req("DELETE", f"/{db}/c?rev={written[2]['rev']}")
        results = []
        for query in (
            "",
            '?startkey="b"&endkey="d"',
            '?startkey="b"&endkey="d"&inclusive_end=false',
            '?descending=true&startkey="d"&endkey="a"',
            "?limit=2&skip=1",
            '?key="b"',
        ):
            _, page = await server.req("GET", f"/{db}/_all_docs{query}")
            results.append(([row["id"] for row in page["rows"]], page["total_rows"]))
        _, keyed = await server.req(
            "POST", f"/{db}/_all_docs?include_docs=true", {"keys": ["e", "c", "zz"]}
        )
        rows = keyed["rows"]
        return results, [
            (
                r["key"],
                r.get("error"),
                r.get("value", {}).get("deleted"),
                (r.get("doc") or {}).get("v"),
            )
            for r in rows
        ]

    results, keyed = await on_both(both, scenario)
    assert results[0] == (["a", "b", "d", "e"], 4)
    assert results[1][0] == ["b", "d"] and results[2][0] == ["b"]
    assert results[3][0] == ["d", "b", "a"] and results[4][0] == ["b", "d"]
    assert results[5][0] == ["b"]
    assert keyed == [
        ("e", None, None, "e"),
        ("c", None, True, None),
        ("zz", "not_found", None, None),
    ]


async def test_bulk_get_shape(both: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        _, got = await server.req(
            "POST",
            f"/{db}/_bulk_get?revs=true",
            {"docs": [{"id": "doc", "rev": "3-c"}, {"id": "other"}, {"id": "doc", "rev": "9-x"}]},
        )
        found = sorted(
            (doc["ok"]["_id"], doc["ok"]["_rev"], doc["ok"]["_revisions"]["ids"])
            for result in got["results"]
            for doc in result["docs"]
            if "ok" in doc
        )
        return found, len(got["results"])

    found, count = await on_both(both, scenario)
    assert found == [("doc", "3-c", ["c", "b", "a"]), ("other", "1-o", ["o"])] and count == 3


async def test_bulk_get_errors_follow_couchdb(store: Couch) -> None:
    """CouchDB answers in request order with ``{"error": {id, rev, error, reason}}`` entries;
    pouchdb-server regroups by id and says ``{"missing": rev}``."""
    db = await seeded(store)
    _, got = await store.req(
        "POST", f"/{db}/_bulk_get", {"docs": [{"id": "doc", "rev": "9-x"}, {"id": "nope"}]}
    )
    assert got["results"] == [
        {
            "id": "doc",
            "docs": [
                {"error": {"id": "doc", "rev": "9-x", "error": "not_found", "reason": "missing"}}
            ],
        },
        {
            "id": "nope",
            "docs": [
                {
                    "error": {
                        "id": "nope",
                        "rev": "undefined",
                        "error": "not_found",
                        "reason": "missing",
                    }
                }
            ],
        },
    ]


async def test_revs_limit_stems_history(store: Couch) -> None:
    """pouchdb-server refuses ``PUT _revs_limit``; CouchDB stems to the limit."""

    async def scenario(server: Couch) -> Any:
        db = fresh_db_name()
        await server.req("PUT", f"/{db}?q=1")
        assert (await server.req("PUT", f"/{db}/_revs_limit", 3))[0] == 200
        _, limit = await server.req("GET", f"/{db}/_revs_limit")
        rev = None
        for n in range(6):
            body: dict[str, Any] = {"n": n} if rev is None else {"n": n, "_rev": rev}
            rev = (await server.req("PUT", f"/{db}/s", body))[1]["rev"]
        _, doc = await server.req("GET", f"/{db}/s?revs=true")
        return limit, doc["_revisions"]["start"], len(doc["_revisions"]["ids"])

    assert await scenario(store) == (3, 6, 3)


async def test_local_documents(both: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = fresh_db_name()
        await server.req("PUT", f"/{db}?q=1")
        s1, r1 = await server.req("PUT", f"/{db}/_local/cp", {"seq": 1})
        s2, r2 = await server.req("PUT", f"/{db}/_local/cp", {"seq": 2, "_rev": r1["rev"]})
        _, doc = await server.req("GET", f"/{db}/_local/cp")
        _, changes = await server.req("GET", f"/{db}/_changes")
        _, all_docs = await server.req("GET", f"/{db}/_all_docs")
        s3, _ = await server.req("DELETE", f"/{db}/_local/cp?rev={r2['rev']}")
        missing = await server.req("GET", f"/{db}/_local/cp")
        return (s1, s2, s3, doc["seq"], changes["results"], all_docs["rows"], missing)

    assert await on_both(both, scenario) == (
        201,
        201,
        200,
        2,
        [],
        [],
        (404, {"error": "not_found", "reason": "missing"}),
    )


async def test_database_errors(both: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = fresh_db_name()
        created = await server.req("PUT", f"/{db}?q=1")
        twice = await server.req("PUT", f"/{db}?q=1")
        status, body = await server.req("GET", f"/{db}-missing")
        missing = (status, body["error"])
        deleted = await server.req("DELETE", f"/{db}")
        return created, twice[0], twice[1]["error"], missing, deleted

    assert await on_both(both, scenario) == (
        (201, {"ok": True}),
        412,
        "file_exists",
        (404, "not_found"),
        (200, {"ok": True}),
    )


async def test_bad_input_errors(store: Couch, reference: Couch) -> None:
    """CouchDB's answers. pouchdb-server agrees on ``bad_request`` status codes for bad JSON and a
    malformed rev, but words some reasons differently, so exact bodies are pinned on the store."""
    for server in (store, reference):
        db = fresh_db_name()
        await server.req("PUT", f"/{db}?q=1")
        status, _ = await server.req("PUT", f"/{db}/x", data=b"{not json")
        assert status == 400, server.kind
    db = fresh_db_name()
    await store.req("PUT", f"/{db}?q=1")
    assert await store.req("PUT", f"/{db}/x", data=b"{not json") == (
        400,
        {"error": "bad_request", "reason": "invalid UTF-8 JSON"},
    )
    assert await store.req("GET", f"/{db}/x?rev=nonsense") == (
        400,
        {"error": "bad_request", "reason": "Invalid rev format"},
    )
    assert await store.req("PUT", f"/{db}/_bad", {}) == (
        400,
        {
            "error": "illegal_docid",
            "reason": "Only reserved document ids may start with underscore.",
        },
    )
    # pouchdb-server accepts upper case names; CouchDB does not.
    assert (await store.req("PUT", "/Bad"))[1]["error"] == "illegal_database_name"
    # pouchdb-server drops the final period of CouchDB's conflict reason.
    await store.req("PUT", f"/{db}/c", {})
    assert await store.req("PUT", f"/{db}/c", {}) == (
        409,
        {"error": "conflict", "reason": "Document update conflict."},
    )
    assert await store.req("GET", f"/{db}/c/none.txt") == (
        404,
        {"error": "not_found", "reason": "Document is missing attachment"},
    )
    # pouchdb-server says "no_db_file"; CouchDB's reason is this one.
    assert await store.req("GET", "/nowhere") == (
        404,
        {"error": "not_found", "reason": "Database does not exist."},
    )
