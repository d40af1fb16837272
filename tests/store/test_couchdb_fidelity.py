"""The deviations a client's own test suite found on the store, each a scenario run on the store
and on Apache CouchDB 3.5.2 and compared exactly (revision hashes of interactive writes and
sequences are CouchDB's own, so only their shape is compared).

Every scenario also pins CouchDB's answer, so it says what CouchDB does even where it skips.

The differences that remain, each also named where the store decides it:

- Sequences are integers here, ``"N-opaque"`` strings on CouchDB; both only ever handed back.
- CouchDB parses JSON of any depth; the store refuses what Python's parser cannot nest (about
  900 levels) and selectors deeper than ``selector.MAX_DEPTH`` with a 400 (params, selector).
- Where CouchDB answers 500 the store refuses in CouchDB's shape with a 400: ``_revs_diff`` with
  a non-list or non-string revision, ``_revisions`` with no ids, ``_bulk_get`` with
  ``{"docs": 5}`` or ``{"id": 5}``, ``_changes?limit=x``, a ``_local`` PUT with a revision that
  is not ``0-N`` (CouchDB's ``{"error": "error"}`` body, with 400).
- ``_revisions`` ids below position 0 are dropped (a revision id here names its position).
- The store is one shard: what CouchDB does per shard (order of ``_changes`` across shards,
  ``missing_stub`` writing other shards' documents, a new document with ``_rev`` on a shard
  never written) is what CouchDB does with ``q=1``.
- ``/_session`` knows Basic auth only (no cookies); ``info`` lists ``default`` alone.
- Attachments are stored as given: no ``encoding``/``encoded_length`` with
  ``att_encoding_info``; their digests are CouchDB's all the same.
- ``_db_updates`` has no rows for CouchDB's own ``_dbs``; eventsource revisions are opaque.
- No JavaScript: design-document filters and views, and Mango's ``$regex``, ``$elemMatch``
  and the like, are a 400.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from couchlite.server import create_store_app
from tests.store.conftest import ADMIN, Couch, auth_header, fresh_db_name


async def new_db(server: Couch) -> str:
    db = fresh_db_name("f")
    assert (await server.req("PUT", f"/{db}?q=1"))[0] == 201
    return db


async def on_both(pair: list[Couch], scenario: Any) -> Any:
    answers = [await scenario(server) for server in pair]
    assert answers[0] == answers[1], f"embedded vs {pair[1].kind}"
    return answers[0]


def shape(rev: str) -> str:
    """An interactive write's revision: its position is the contract, the hash is the server's."""
    return rev.split("-", 1)[0] + "-*"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_bulk_docs_invalid_document_refuses_the_whole_request(
    vs_couchdb: list[Couch],
) -> None:
    bad_docs: list[Any] = [
        {"_id": "_bad"},
        {"_id": ""},
        {"_id": 5},
        {"_id": "x", "_foo": 1},
        {"_id": "x", "_rev": "bogus"},
        {"_id": "x", "_deleted": "yes"},
        {"_id": "x", "_attachments": 5},
        {"_id": "x", "_attachments": {"a": {"data": "!!!"}}},
        {"_id": "x", "_attachments": {"a": {"content_type": "text/plain"}}},
        {"_id": "x", "_attachments": {"_a": {"data": b64(b"hi")}}},
        {"_id": "x", "_revisions": 5},
        {"_id": "x", "_revisions": {"start": "2", "ids": ["b"]}},
        {"_id": "x", "_revisions": {"start": 1, "ids": "x"}},
        {"_id": "x", "_revisions": {"start": 2, "ids": ["b", 5]}},
        {"_id": "x", "_revisions": {"start": 1, "ids": ["z" * 32]}},
        5,
    ]

    async def scenario(server: Couch) -> Any:
        db = await new_db(server)
        answers = []
        for bad in bad_docs:
            answers.append(
                await server.req("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "fine"}, bad]})
            )
        replicated = await server.req(
            "POST", f"/{db}/_bulk_docs", {"new_edits": False, "docs": [{"_id": "ok"}]}
        )
        _, all_docs = await server.req("GET", f"/{db}/_all_docs")
        return answers, replicated, all_docs["rows"]

    answers, replicated, rows = await on_both(vs_couchdb, scenario)
    assert {status for status, _ in answers} == {400} and rows == []
    assert answers[0][1] == {
        "error": "illegal_docid",
        "reason": "Only reserved document ids may start with underscore.",
    }
    assert answers[9][1] == {
        "error": "bad_request",
        "reason": "Attachment name '_a' starts with prohibited character '_'",
    }
    assert replicated == (
        400,
        {
            "error": "bad_request",
            "reason": "When `new_edits: false`, the document needs `_rev` or `_revisions`"
            " specified",
        },
    )


async def test_bulk_docs_missing_stub_refuses_the_whole_request(
    vs_couchdb: list[Couch],
) -> None:
    async def scenario(server: Couch) -> Any:
        db = await new_db(server)
        answer = await server.req(
            "POST",
            f"/{db}/_bulk_docs",
            {"docs": [{"_id": "a"}, {"_id": "s", "_attachments": {"f": {"stub": True}}}]},
        )
        _, rows = await server.req("GET", f"/{db}/_all_docs")
        return answer, [row["id"] for row in rows["rows"]]

    assert await on_both(vs_couchdb, scenario) == (
        (412, {"error": "missing_stub", "reason": "Invalid attachment stub in s for f"}),
        [],  # on one shard; across CouchDB's shards, the others' documents are written
    )


async def test_replication_fields_are_kept(vs_couchdb: list[Couch]) -> None:
    fields = {
        "_replication_state": "completed",
        "_replication_id": "abc",
        "_replication_state_time": "2026-01-01T00:00:00Z",
        "_replication_state_reason": "none",
        "_replication_stats": {"docs_read": 1},
    }

    async def scenario(server: Couch) -> Any:
        db = await new_db(server)
        status, _ = await server.req("PUT", f"/{db}/r", {"source": "a", **fields})
        _, doc = await server.req("GET", f"/{db}/r")
        other = await server.req("PUT", f"/{db}/r2", {"_replication_other": 1})
        return status, {k: v for k, v in doc.items() if k != "_rev"}, other

    assert await on_both(vs_couchdb, scenario) == (
        201,
        {"_id": "r", "source": "a", **fields},
        (
            400,
            {
                "error": "doc_validation",
                "reason": "Bad special document member: _replication_other",
            },
        ),
    )


async def test_revision_format_is_couchdbs(vs_couchdb: list[Couch]) -> None:
    hex_upper = "ABCDEF0123456789" * 2
    candidates = [
        "0-a",
        "1-",
        "1-a-b",
        "01-b",
        "+1-c",
        "1-A_B!",
        "1- a",
        "99999999999999999999-a",
        f"1-{hex_upper}",
        "-a",
        "a-b",
        "1",
        " 1-a",
        "-1-a",
        "1-" + "z" * 32,
    ]

    async def scenario(server: Couch) -> Any:
        db = await new_db(server)
        statuses = {}
        for rev in candidates:
            status, _ = await server.req(
                "POST",
                f"/{db}/_bulk_docs",
                {"new_edits": False, "docs": [{"_id": "d", "_rev": rev}]},
            )
            statuses[rev] = status
        _, leaves = await server.req("GET", f"/{db}/d?open_revs=all")
        _, zero = await server.req("GET", f"/{db}/d?rev=0-a")
        _, padded = await server.req("GET", f"/{db}/d?rev=01-b")
        bad_get = await server.req("GET", f"/{db}/d?rev=bogus")
        _, diff = await server.req("POST", f"/{db}/_revs_diff", {"d": ["0-a", "01-b", "2-q"]})
        diff["d"]["possible_ancestors"].sort()
        bad_diff = await server.req("POST", f"/{db}/_revs_diff", {"d": ["bogus"]})
        await server.req(
            "POST",
            f"/{db}/_bulk_docs",
            {"new_edits": False, "docs": [{"_id": "z", "_revisions": {"start": 0, "ids": ["a"]}}]},
        )
        _, root = await server.req("GET", f"/{db}/z?revs=true")
        return (
            statuses,
            sorted(row["ok"]["_rev"] for row in leaves),
            zero["_rev"],
            padded["_rev"],
            bad_get,
            diff,
            bad_diff,
            root,
        )

    statuses, leaves, zero, padded, bad_get, diff, bad_diff, root = await on_both(
        vs_couchdb, scenario
    )
    assert [rev for rev, status in statuses.items() if status == 400] == candidates[-6:]
    assert f"1-{hex_upper.lower()}" in leaves and "1-b" in leaves and "1-c" in leaves
    assert (zero, padded) == ("0-a", "1-b")
    assert bad_get == bad_diff == (400, {"error": "bad_request", "reason": "Invalid rev format"})
    older = [rev for rev in leaves if not rev.startswith("9999")]
    assert diff == {"d": {"missing": ["2-q"], "possible_ancestors": older}}
    assert root == {"_id": "z", "_rev": "0-a", "_revisions": {"start": 0, "ids": ["a"]}}


async def test_new_document_written_with_a_rev(vs_couchdb: list[Couch]) -> None:
    """CouchDB makes such a document the named revision's child, unless nothing was ever
    written to the database (to the shard, on CouchDB): then it is a conflict."""

    async def scenario(server: Couch) -> Any:
        db = await new_db(server)
        first = await server.req("PUT", f"/{db}/a", {"_rev": "1-x"})
        _, bulk_first = await server.req(
            "POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "b", "_rev": "0-y"}]}
        )
        await server.req("PUT", f"/{db}/other", {})
        put_status, put = await server.req("PUT", f"/{db}/a", {"_rev": "1-x"})
        _, bulk = await server.req(
            "POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "b", "_rev": "0-y"}]}
        )
        _, doc = await server.req("GET", f"/{db}/a?revs_info=true&revs=true")
        again = await server.req("PUT", f"/{db}/a", {"_rev": "0-x"})
        info = [
            (shape(i["rev"]) if i["status"] != "missing" else i["rev"], i["status"])
            for i in doc["_revs_info"]
        ]
        return (
            first,
            bulk_first,
            put_status,
            shape(put["rev"]),
            shape(bulk[0]["rev"]),
            info,
            doc["_revisions"]["ids"][1:],
            again,
        )

    conflict = {"error": "conflict", "reason": "Document update conflict."}
    assert await on_both(vs_couchdb, scenario) == (
        (409, conflict),
        [{"id": "b", **conflict}],
        201,
        "2-*",
        "1-*",
        [("2-*", "available"), ("1-x", "missing")],
        ["x"],
        (409, conflict),
    )


async def test_all_docs_attachments_inline(vs_couchdb: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await new_db(server)
        att = {"content_type": "application/octet-stream", "data": b64(b"\x00\x01payload")}
        await server.req("PUT", f"/{db}/d", {"_attachments": {"a.bin": att}})
        _, ranged = await server.req("GET", f"/{db}/_all_docs?include_docs=true&attachments=true")
        _, keyed = await server.req(
            "POST", f"/{db}/_all_docs?include_docs=true&attachments=true", {"keys": ["d", "n"]}
        )
        _, no_docs = await server.req("GET", f"/{db}/_all_docs?attachments=true")

        def atts(page: Any) -> Any:
            return [(row.get("doc") or {}).get("_attachments") for row in page["rows"]]

        return atts(ranged), atts(keyed), keyed["offset"], atts(no_docs)

    ranged, keyed, offset, no_docs = await on_both(vs_couchdb, scenario)
    inline = {
        "a.bin": {
            "content_type": "application/octet-stream",
            "revpos": 1,
            "digest": ranged[0]["a.bin"]["digest"],
            "data": b64(b"\x00\x01payload"),
        }
    }
    assert ranged == [inline] and keyed == [inline, None]
    assert offset is None and no_docs == [None]


async def test_attachment_names_starting_with_underscore(vs_couchdb: list[Couch]) -> None:
    refused = {
        "error": "bad_request",
        "reason": "Attachment name '_x.txt' starts with prohibited character '_'",
    }

    async def scenario(server: Couch) -> Any:
        db = await new_db(server)
        _, written = await server.req("PUT", f"/{db}/d", {})
        rev = written["rev"]
        plain = {"Content-Type": "text/plain"}
        put = await server.req("PUT", f"/{db}/d/_x.txt?rev={rev}", data=b"hi", headers=plain)
        encoded = await server.req("PUT", f"/{db}/d/%5Fx.txt?rev={rev}", data=b"hi", headers=plain)
        nested_status, _ = await server.req(
            "PUT", f"/{db}/d/x/_y.txt?rev={rev}", data=b"hi", headers=plain
        )
        read = await server.req("GET", f"/{db}/d/_x.txt")
        delete = await server.req("DELETE", f"/{db}/d/_x.txt?rev={rev}")
        inline = await server.req(
            "PUT", f"/{db}/e", {"_attachments": {"_x.txt": {"data": b64(b"hi")}}}
        )
        return put, encoded, nested_status, read, delete, inline

    assert await on_both(vs_couchdb, scenario) == (
        (400, refused),
        (400, refused),
        201,
        (404, {"error": "not_found", "reason": "Document is missing attachment"}),
        (400, refused),
        (400, refused),
    )


async def test_all_docs_keys_with_key_or_range(vs_couchdb: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await new_db(server)
        await server.req("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": i} for i in "abc"]})
        answers = [
            await server.req("GET", f'/{db}/_all_docs?key="a"&keys=["b","c"]'),
            await server.req("POST", f'/{db}/_all_docs?key="a"', {"keys": ["b", "c"]}),
            await server.req("GET", f'/{db}/_all_docs?keys=["b"]&startkey="a"'),
            await server.req("GET", f'/{db}/_all_docs?keys=["b"]&end_key="a"'),
            await server.req("POST", f'/{db}/_all_docs?keys=["a"]', {"keys": ["b"]}),
            await server.req("GET", f"/{db}/_all_docs?keys=5"),
        ]
        _, page = await server.req(
            "POST", f"/{db}/_all_docs?limit=1&skip=1&descending=true", {"keys": ["a", "b", "c"]}
        )
        return answers, [row["id"] for row in page["rows"]], page["offset"]

    answers, ids, offset = await on_both(vs_couchdb, scenario)
    incompatible = {
        "error": "query_parse_error",
        "reason": "`keys` is incompatible with `key`, `start_key` and `end_key`",
    }
    assert answers[:5] == [(400, incompatible)] * 5
    assert answers[5] == (
        400,
        {"error": "bad_request", "reason": "`keys` parameter must be an array."},
    )
    assert ids == ["b"] and offset is None


async def test_attachments_true_answers_by_accept(vs_couchdb: list[Couch]) -> None:
    """mochiweb's rule: no Accept takes anything; else multipart/related, multipart/* or */*
    with a non-zero q. open_revs asks the same of multipart/mixed."""
    accepts: list[str | None] = [
        None,
        "*/*",
        "application/json",
        "multipart/related",
        "text/html",
        "application/json, multipart/related",
        "multipart/*",
        "application/*",
        "multipart/related;q=0",
        "*/*;q=0",
        "Multipart/Related",
    ]

    async def content_type(server: Couch, path: str, accept: str | None) -> str:
        headers = {} if accept is None else {"Accept": accept}
        # aiohttp adds Accept: */* unless told to skip it
        resp, _ = await server.response("GET", path, headers=headers, skip_auto_headers=["Accept"])
        return resp.headers["Content-Type"].split(";")[0]

    async def scenario(server: Couch) -> Any:
        db = await new_db(server)
        att = {"content_type": "text/plain", "data": b64(b"hello")}
        _, written = await server.req("PUT", f"/{db}/d", {"_attachments": {"a.txt": att}})
        await server.req("PUT", f"/{db}/plain", {})
        doc = [await content_type(server, f"/{db}/d?attachments=true", a) for a in accepts]
        without = await content_type(server, f"/{db}/plain?attachments=true", "*/*")
        all_stubs = await content_type(server, f'/{db}/d?atts_since=["{written["rev"]}"]', "*/*")
        open_revs = [await content_type(server, f"/{db}/d?open_revs=all", a) for a in accepts]
        return doc, without, all_stubs, open_revs

    doc, without, all_stubs, open_revs = await on_both(vs_couchdb, scenario)
    related, json_type = "multipart/related", "application/json"
    assert doc[:7] == [related, related, json_type, related, json_type, related, related]
    assert doc[7:] == [json_type, json_type, json_type, related]
    assert without == all_stubs == json_type
    assert open_revs[:3] == ["multipart/mixed", "multipart/mixed", json_type]


async def test_non_json_numbers_and_lone_surrogates_are_400(vs_couchdb: list[Couch]) -> None:
    bodies = [
        b'{"d":NaN}',
        b'{"d":1e999999}',
        b'{"d":-1e999999}',
        b'{"d":Infinity}',
        b'{"d":["1-\\ud800"]}',
        b'{"\\udc00":["1-a"]}',
    ]

    async def scenario(server: Couch) -> Any:
        db = await new_db(server)
        answers = []
        for body in bodies:
            answers.append(await server.req("POST", f"/{db}/_revs_diff", data=body))
            docs = b'{"docs":[{"_id":"n","x":' + body[5:-1] + b"}]}"
            answers.append(await server.req("POST", f"/{db}/_bulk_docs", data=docs))
        paired = await server.req(
            "POST", f"/{db}/_bulk_docs", data=b'{"docs":[{"_id":"p","x":"\\ud83d\\ude00"}]}'
        )
        _, doc = await server.req("GET", f"/{db}/p")
        return answers, paired[0], doc["x"]

    answers, paired, emoji = await on_both(vs_couchdb, scenario)
    invalid = (400, {"error": "bad_request", "reason": "invalid UTF-8 JSON"})
    assert answers == [invalid] * len(answers)
    assert paired == 201 and emoji == "\U0001f600"


async def test_deep_selector_is_a_4xx_in_couchdbs_shape(store: Couch) -> None:
    """CouchDB matches a 2,000-level ``$and`` (200); the store's matcher recurses per level, so it
    refuses selectors deeper than ``selector.MAX_DEPTH`` with a 400, never a 500."""
    db = await new_db(store)
    for levels in (2000, 300):
        body = '{"selector":' + '{"$and":[' * levels + '{"a":1}' + "]}" * levels + "}"
        for feed in ("normal", "longpoll"):
            resp, content = await store.response(
                "POST",
                f"/{db}/_changes?filter=_selector&feed={feed}&timeout=100",
                data=body.encode(),
                headers={"Content-Type": "application/json"},
            )
            assert resp.status == 400 and resp.content_type == "application/json"
            assert set(__import__("json").loads(content)) == {"error", "reason"}
    deep = "[" * 8000 + "]" * 8000
    for path, body in (
        (f"/{db}/_bulk_docs", '{"docs":[{"_id":"deep","x":' + deep + "}]}"),
        (f"/{db}/_revs_diff", '{"x":' + deep + "}"),
        (f"/{db}/deep", '{"x":' + deep + "}"),
    ):
        method = "PUT" if path.endswith("/deep") else "POST"
        assert await store.req(method, path, data=body.encode()) == (
            400,
            {"error": "bad_request", "reason": "JSON nested too deeply"},
        )
    shallow = '{"selector":' + '{"$and":[' * 50 + '{"a":1}' + "]}" * 50 + "}"
    status, page = await store.req(
        "POST", f"/{db}/_changes?filter=_selector", data=shallow.encode()
    )
    assert status == 200 and page["results"] == []


async def test_compressible_attachment_digests(vs_couchdb: list[Couch]) -> None:
    """CouchDB digests text/*, JSON, JavaScript and XML attachments as it stores them: gzipped."""

    async def scenario(server: Couch) -> Any:
        db = await new_db(server)
        atts = {
            name: {"content_type": kind, "data": b64(b"hello hello hello")}
            for name, kind in (
                ("a.txt", "text/plain"),
                ("b.json", "application/json"),
                ("c.bin", "application/octet-stream"),
                ("d.html", "text/html; charset=utf-8"),
            )
        }
        await server.req("PUT", f"/{db}/d", {"_attachments": atts})
        _, doc = await server.req("GET", f"/{db}/d")
        return {
            name: (meta["digest"], meta["length"]) for name, meta in doc["_attachments"].items()
        }

    digests = await on_both(vs_couchdb, scenario)
    assert digests["c.bin"][0] != digests["a.txt"][0] and digests["a.txt"][1] == 17


async def test_a_body_over_the_limit_is_couchdbs_413(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    """aiohttp's own refusal (``client_max_size``) goes out as CouchDB's JSON, not text/plain."""
    app = create_store_app(
        tmp_path, admin_user=ADMIN[0], admin_password=ADMIN[1], max_request_size=1024
    )
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession(headers={"Authorization": auth_header(*ADMIN)}) as session:
        url = str(server.make_url("/"))
        async with session.put(url + "big") as resp:
            assert resp.status == 201
        async with session.post(
            url + "big/_bulk_docs", data=b'{"docs":[{"x":"' + b"y" * 4096 + b'"}]}'
        ) as resp:
            assert resp.status == 413 and resp.content_type == "application/json"
            assert await resp.json() == {
                "error": "too_large",
                "reason": "the request entity is too large",
            }


async def test_revision_in_the_url_and_the_body(vs_couchdb: list[Couch]) -> None:
    async def scenario(server: Couch) -> Any:
        db = await new_db(server)
        return [
            await server.req("PUT", f"/{db}/_local/q?rev=bogus", {}),
            await server.req("PUT", f"/{db}/q?rev=bogus", {}),
            await server.req("PUT", f"/{db}/q?rev=01-a", {"_rev": "1-a"}),
            await server.req("PUT", f"/{db}/q?rev=1-a", {"_rev": "2-a"}),
            await server.req("DELETE", f"/{db}/q?rev=bogus"),
        ]

    answers = await on_both(vs_couchdb, scenario)
    assert answers[0] == (400, {"error": "bad_request", "reason": "Invalid rev format"})
    assert answers[2][0] == 409 and answers[3][0] == 400


async def test_numbers_beyond_sqlite_are_not_500s(store: Couch) -> None:
    """A since, limit or skip beyond SQLite's integers was an OverflowError (a 500)."""
    db = await new_db(store)
    await store.req("PUT", f"/{db}/a", {})
    huge = "9" * 30
    for path in (
        f"/{db}/_changes?since={huge}",
        f"/{db}/_changes?limit={huge}",
        f"/{db}/_all_docs?limit={huge}&skip={huge}",
        f"/_db_updates?since={huge}&limit={huge}",
    ):
        status, body = await store.req("GET", path)
        assert status == 200, (path, body)
    assert (await store.req("GET", f"/{db}/_changes?since=%C2%B2"))[0] == 400


async def test_session_answers_who_is_asking(vs_couchdb: list[Couch]) -> None:
    """``GET /_session`` as CouchDB answers it. CouchDB also lists its cookie and JWT handlers
    in ``info``; the store has Basic auth only, so only ``userCtx`` and refusals are compared."""
    answers = []
    for server in vs_couchdb:
        _, mine = await server.req("GET", "/_session")
        user = server.session.headers["Authorization"]
        async with aiohttp.ClientSession() as anonymous:
            async with anonymous.get(server.url + "/_session") as resp:
                nobody = (resp.status, (await resp.json())["userCtx"])
            wrong = base64.b64encode(f"{ADMIN[0]}-nobody:wrong".encode()).decode()
            async with anonymous.get(
                server.url + "/_session", headers={"Authorization": f"Basic {wrong}"}
            ) as resp:
                refused = (resp.status, await resp.json())
        answers.append((mine["ok"], mine["userCtx"]["roles"], nobody, refused, bool(user)))
    assert answers[0] == answers[1]
    assert answers[0][2] == (200, {"name": None, "roles": []})
    assert answers[0][3] == (
        401,
        {"error": "unauthorized", "reason": "Name or password is incorrect."},
    )
