"""Documents, ``_bulk_get``, ``_revs_diff``, attachments (inline, multipart, ``atts_since``) and
``_local`` documents on the store and on CouchDB 3.5.2, compared exactly.

The scenarios that pouchdb-server answers differently live in test_conformance.py pinned on the
store; here the same ones meet CouchDB itself.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from couchlite.server import multipart
from tests.store.conftest import Couch
from tests.store.test_conformance import BRANCHES
from tests.store.test_couchdb_fidelity import b64, new_db, on_both, shape


async def seeded(server: Couch) -> str:
    db = await new_db(server)
    for doc in BRANCHES:
        status, body = await server.req(
            "POST", f"/{db}/_bulk_docs", {"docs": [doc], "new_edits": False}
        )
        assert (status, body) == (201, [])
    return db


async def test_winner_conflicts_revs_info_and_deleted(vs_couchdb: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        return [
            await server.req("GET", f"/{db}/doc?{query}")
            for query in (
                "conflicts=true&deleted_conflicts=true",
                "meta=true",
                "revs_info=true",
                "rev=2-x&revs=true",
                "rev=2-b",
                "rev=9-none",
                "open_revs=all&revs=true",
                'open_revs=["3-c","9-nope","2-w"]&latest=true',
                'open_revs=["1-a"]',
                "open_revs=bogus",
            )
        ] + [await server.req("GET", f"/{db}/gone"), await server.req("GET", f"/{db}/nope")]

    answers = await on_both(vs_couchdb, scenario)
    assert answers[0][1]["_deleted_conflicts"] == ["4-d"]
    assert answers[-2] == (404, {"error": "not_found", "reason": "deleted"})


async def test_revs_diff_possible_ancestors(vs_couchdb: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        bodies: list[dict[str, list[str]]] = [
            {"doc": ["2-b", "4-new", "5-new"]},
            {"doc": ["3-new"]},
            {"doc": ["1-a", "3-c"], "other": ["1-o", "2-o"], "fresh": ["1-q"]},
            {"doc": []},
            {},
        ]
        return [await server.req("POST", f"/{db}/_revs_diff", body) for body in bodies]

    answers = await on_both(vs_couchdb, scenario)
    assert answers[1][1] == {"doc": {"missing": ["3-new"], "possible_ancestors": ["2-x"]}}


async def test_bulk_get_answers_and_errors(vs_couchdb: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        requests: list[Any] = [
            {"id": "doc", "rev": "3-c"},
            {"id": "doc", "rev": "9-x"},
            {"id": "nope"},
            {"id": "other"},
            {"id": "gone"},
            {"id": "doc", "rev": "2-w"},
            {"id": "doc"},  # every leaf, in the key tree's order
        ]
        answers = [
            await server.req("POST", f"/{db}/_bulk_get?revs=true", {"docs": requests}),
            await server.req("POST", f"/{db}/_bulk_get?latest=true", {"docs": requests[-2:-1]}),
            await server.req("POST", f"/{db}/_bulk_get", {}),
            await server.req("GET", f"/{db}/_bulk_get"),
        ]
        return answers

    answers = await on_both(vs_couchdb, scenario)
    every_leaf = answers[0][1]["results"][-1]["docs"]
    assert [d["ok"]["_rev"] for d in every_leaf] == ["3-c", "3-z", "4-d", "2-x"]


async def test_bulk_get_docs_not_a_list(store: Couch) -> None:
    """CouchDB answers 500 (function_clause) for ``{"docs": 5}``; the store a 400."""
    db = await new_db(store)
    assert await store.req("POST", f"/{db}/_bulk_get", {"docs": 5}) == (
        400,
        {"error": "bad_request", "reason": "Missing JSON list of 'docs'."},
    )


async def test_inline_attachments_atts_since_and_stubs(vs_couchdb: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await new_db(server)
        one = {"content_type": "application/octet-stream", "data": b64(b"one")}
        _, r1 = await server.req("PUT", f"/{db}/d", {"_attachments": {"a": one}})
        _, doc = await server.req("GET", f"/{db}/d")
        two = {"content_type": "application/octet-stream", "data": b64(b"two")}
        _, r2 = await server.req(
            "PUT",
            f"/{db}/d",
            {"_rev": r1["rev"], "_attachments": {"a": doc["_attachments"]["a"], "b": two}},
        )
        out = []
        for query in (
            f'atts_since=["{r1["rev"]}"]',
            f'atts_since=["{r2["rev"]}"]',
            'atts_since=["9-unknown"]',
            "attachments=true",
            f"rev={r1['rev']}&attachments=true",
        ):
            status, body = await server.req("GET", f"/{db}/d?{query}")
            out.append((status, body.get("_attachments")))
        stub_without_base = await server.req(
            "PUT", f"/{db}/e", {"_attachments": {"a": {"stub": True}}}
        )
        bad_data = await server.req("PUT", f"/{db}/e", {"_attachments": {"a": {"data": "*"}}})
        return out, stub_without_base, bad_data, shape(r2["rev"])

    out, stub_without_base, bad_data, rev = await on_both(vs_couchdb, scenario)
    assert {k: "data" in v for k, v in out[0][1].items()} == {"a": False, "b": True}
    assert stub_without_base == (
        412,
        {"error": "missing_stub", "reason": "Invalid attachment stub in e for a"},
    )
    assert bad_data[0] == 400 and rev == "2-*"


def parts_of(content_type: str, body: bytes) -> list[Any]:
    """A multipart answer as (headers that matter, JSON or bytes) per part."""
    parsed = multipart.parse(body, multipart.boundary_of(content_type))
    out: list[tuple[object, ...]] = []
    for headers, content in parsed:
        kind = headers.get("content-type", "")
        if kind.startswith("application/json"):
            doc = json.loads(content)
            doc.pop("_rev", None)
            out.append(("json", doc))
        elif kind.startswith("multipart/related"):
            out.append(("related", parts_of(kind, content)))
        else:
            out.append((headers.get("content-disposition"), kind, content))
    return out


async def test_multipart_put_and_get(vs_couchdb: list[Couch]) -> None:
    """The replicator's way: a multipart/related PUT with ``follows``, read back as
    multipart/related and as open_revs multipart/mixed."""
    boundary = "abc123"
    doc = {
        "_id": "m",
        "_rev": "1-m",
        "_revisions": {"start": 1, "ids": ["m"]},
        "_attachments": {
            "x.bin": {
                "content_type": "application/octet-stream",
                "follows": True,
                "length": 5,
                "revpos": 1,
                "digest": "md5-"
                + base64.b64encode(__import__("hashlib").md5(b"\x00abc\xff").digest()).decode(),
            }
        },
    }
    body = (
        (
            f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{json.dumps(doc)}\r\n"
            f'--{boundary}\r\nContent-Disposition: attachment; filename="x.bin"\r\n'
            f"Content-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\n"
        ).encode()
        + b"\x00abc\xff"
        + f"\r\n--{boundary}--".encode()
    )

    async def scenario(server: Couch) -> Any:
        db = await new_db(server)
        put = await server.req(
            "PUT",
            f"/{db}/m?new_edits=false",
            data=body,
            headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
        )
        resp, related = await server.response(
            "GET",
            f"/{db}/m?attachments=true&revs=true",
            headers={"Accept": "multipart/related"},
        )
        related_parts = parts_of(resp.headers["Content-Type"], related)
        resp, mixed = await server.response(
            "GET",
            f"/{db}/m?open_revs=all&attachments=true",
            headers={"Accept": "multipart/mixed"},
        )
        mixed_parts = parts_of(resp.headers["Content-Type"], mixed)
        # As CouchDB's replicator asks: no attachments=true, the bodies come all the same.
        resp, bare = await server.response(
            "GET",
            f"/{db}/m?open_revs=all&revs=true&latest=true",
            headers={"Accept": "multipart/mixed"},
        )
        mixed_parts.append(parts_of(resp.headers["Content-Type"], bare))
        _, data = await server.req("GET", f"/{db}/m/x.bin", raw=True)
        return put, related_parts, mixed_parts, data

    put, related, _, data = await on_both(vs_couchdb, scenario)
    assert put == (201, {"ok": True, "id": "m", "rev": "1-m"}) and data == b"\x00abc\xff"
    assert related[1][2] == b"\x00abc\xff"


async def test_local_documents_and_their_errors(vs_couchdb: list[Couch]) -> None:
    """CouchDB checks no revision of a ``_local`` document: ``0-N`` given makes ``0-(N+1)``."""

    async def scenario(server: Couch) -> Any:
        db = await new_db(server)
        return [
            await server.req("PUT", f"/{db}/_local/cp", {"seq": 1}),
            await server.req("PUT", f"/{db}/_local/cp", {"seq": 2}),
            await server.req("PUT", f"/{db}/_local/cp", {"seq": 2, "_rev": "0-1"}),
            await server.req("PUT", f"/{db}/_local/cp", {"seq": 3, "_rev": "0-1"}),
            await server.req("PUT", f"/{db}/_local/cp", {"seq": 4, "_rev": "0-9"}),
            await server.req("PUT", f"/{db}/_local/cp", {"seq": 5, "_rev": "0-01"}),
            await server.req("PUT", f"/{db}/_local/cp", {"seq": 5, "_rev": 5}),
            await server.req("PUT", f"/{db}/_local/cp?rev=0-7", {"seq": 6}),
            await server.req("GET", f"/{db}/_local/cp"),
            await server.req("GET", f"/{db}/_local/cp?revs=true"),
            await server.req("DELETE", f"/{db}/_local/cp"),
            await server.req("DELETE", f"/{db}/_local/cp?rev=0-1"),
            await server.req("GET", f"/{db}/_local/cp"),
            await server.req("PUT", f"/{db}/_local/gone", {"_deleted": True}),
            await server.req("GET", f"/{db}/_local/cp/att"),
            await server.req(
                "POST",
                f"/{db}/_bulk_docs",
                {"docs": [{"_id": "_local/b", "v": 1}, {"_id": "_local/r", "_rev": "1-x"}]},
            ),
            await server.req(
                "POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "_local/r", "_deleted": True}]}
            ),
            await server.req(
                "POST", f"/{db}/_bulk_docs", {"new_edits": False, "docs": [{"_id": "_local/x"}]}
            ),
            await server.req("GET", f"/{db}/_local/b"),
            await server.req("GET", f"/{db}/_local_docs"),
            await server.req("GET", f"/{db}/_local_docs?include_docs=true"),
        ]

    answers = await on_both(vs_couchdb, scenario)
    assert answers[0] == answers[1] == (201, {"ok": True, "id": "_local/cp", "rev": "0-1"})
    assert answers[4][1]["rev"] == "0-10" and answers[7][1]["rev"] == "0-8"
    assert answers[15] == (
        201,
        [
            {"ok": True, "id": "_local/b", "rev": "0-1"},
            {"id": "_local/r", "error": "error", "reason": "Invalid rev format"},
        ],
    )


async def test_local_bad_revision_on_put_is_a_400(store: Couch) -> None:
    """CouchDB answers a 500 for ``_rev: "1-x"`` on a ``_local`` PUT; the store a 400."""
    db = await new_db(store)
    assert await store.req("PUT", f"/{db}/_local/cp", {"_rev": "1-x"}) == (
        400,
        {"error": "error", "reason": "Invalid rev format"},
    )


async def test_all_docs_options_and_refusals(vs_couchdb: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        queries = [
            "startkey=5",
            "endkey=5",
            "startkey=[1]",
            "endkey={}",
            "key=null",
            "startkey=null",
            "keys=[1,null,%22doc%22]",
            "startkey_docid=a",
            "limit=-1",
            "skip=-1",
            "limit=x",
            "limit=1.5",
            "limit=%2B1",
            "descending=yes",
            "include_docs=1",
            "inclusive_end=no&endkey=%22doc%22",
            "update_seq=x",
            "startkey=bogus",
            "include_docs=true&conflicts=true",
            "descending=true&startkey=%22other%22&endkey=%22doc%22&inclusive_end=false",
            "skip=1&limit=1",
        ]
        return [(q, await server.req("GET", f"/{db}/_all_docs?{q}")) for q in queries]

    answers = dict(await on_both(vs_couchdb, scenario))
    assert answers["limit=-1"] == (
        400,
        {"error": "query_parse_error", "reason": 'Invalid value for positive integer: "-1"'},
    )
    assert answers["descending=yes"] == (
        400,
        {"error": "query_parse_error", "reason": 'Invalid boolean parameter: "yes"'},
    )
    assert [row["id"] for row in answers["startkey=5"][1]["rows"]] == ["doc", "other"]
    assert answers["endkey=5"][1]["rows"] == []


async def test_document_options_take_only_true(vs_couchdb: list[Couch]) -> None:
    """Reads ignore an option's value other than "true"; ``new_edits`` is off only for "false"."""

    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        reads = [
            await server.req("GET", f"/{db}/doc?{q}")
            for q in ("revs=yes", "conflicts=1", "attachments=yes", "latest=x", "meta=no")
        ]
        bulk = await server.req(
            "POST", f"/{db}/_bulk_get?revs=yes&latest=1", {"docs": [{"id": "other"}]}
        )
        written = await server.req("PUT", f"/{db}/nx?new_edits=no", {"_rev": "1-a"})
        return reads, bulk, written[0], shape(written[1]["rev"])

    reads, _bulk, status, rev = await on_both(vs_couchdb, scenario)
    assert reads == [(200, {"_id": "doc", "_rev": "3-z", "v": "z"})] * 5
    assert (status, rev) == (201, "2-*")


async def test_bulk_get_item_refusals(vs_couchdb: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await seeded(server)
        items = [
            {"id": "doc", "rev": "bogus"},
            {"id": "doc", "rev": 5},
            {},
            5,
            {"id": "doc", "atts_since": "x"},
            {"id": "doc", "rev": "3-z", "atts_since": ["bogus"]},
            {"id": "doc", "rev": "03-z"},
        ]
        return await server.req("POST", f"/{db}/_bulk_get", {"docs": items})

    status, body = await on_both(vs_couchdb, scenario)
    assert status == 200
    assert body["results"][0]["docs"][0]["error"] == {
        "id": "doc",
        "rev": "bogus",
        "error": "bad_request",
        "reason": "Invalid rev format",
    }
