"""The store's own HTTP behaviour: auth, server endpoints, live feeds, multipart, concurrency."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import aiohttp

from couchlite.server import multipart
from couchlite.server.app import split_path
from tests.store.conftest import ADMIN, Couch, auth_header, fresh_db_name


async def new_db(store: Couch) -> str:
    db = fresh_db_name()
    assert (await store.req("PUT", f"/{db}"))[0] == 201
    return db


async def test_welcome_and_up_are_open_everything_else_needs_the_admin(store: Couch) -> None:
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(store.url + "/") as resp:
            welcome = await resp.json()
        assert welcome["couchdb"] == "Welcome" and welcome["vendor"] == {"name": "couchgate"}
        assert welcome["version"] == "3.3.3-compatible" and len(welcome["uuid"]) == 32
        async with anonymous.get(store.url + "/_up") as resp:
            assert resp.status == 200
        for headers in (
            {},
            {"Authorization": auth_header(ADMIN[0], "wrong")},
            {"Authorization": "Bearer x"},
        ):
            async with anonymous.get(store.url + "/_all_dbs", headers=headers) as resp:
                assert resp.status == 401
                assert await resp.json() == {
                    "error": "unauthorized",
                    "reason": "Name or password is incorrect.",
                }


async def test_uuid_is_stable_and_server_endpoints(store: Couch) -> None:
    _, first = await store.req("GET", "/")
    _, again = await store.req("GET", "/")
    assert first["uuid"] == again["uuid"]
    db = await new_db(store)
    _, dbs = await store.req("GET", "/_all_dbs")
    assert db in dbs
    _, uuids = await store.req("GET", "/_uuids?count=3")
    assert len(set(uuids["uuids"])) == 3


async def test_db_info_security_and_full_commit(store: Couch) -> None:
    db = await new_db(store)
    await store.req("PUT", f"/{db}/a", {"x": 1})
    _, info = await store.req("GET", f"/{db}/")
    for key in (
        "db_name",
        "doc_count",
        "doc_del_count",
        "update_seq",
        "instance_start_time",
        "sizes",
        "purge_seq",
        "compact_running",
        "disk_format_version",
    ):
        assert key in info
    assert info["doc_count"] == 1 and info["update_seq"] == 1
    assert set(info["sizes"]) == {"file", "external", "active"}
    security = {"members": {"names": ["u1"], "roles": []}, "admins": {"names": [], "roles": []}}
    assert await store.req("PUT", f"/{db}/_security", security) == (200, {"ok": True})
    assert await store.req("GET", f"/{db}/_security") == (200, security)
    assert await store.req("POST", f"/{db}/_ensure_full_commit") == (
        201,
        {"ok": True, "instance_start_time": "0"},
    )
    resp, _ = await store.response("HEAD", f"/{db}")
    assert resp.status == 200


async def test_raw_path_segments_keep_encoded_slashes() -> None:
    assert split_path("/db/_design%2Fx") == ["db", "_design/x"]
    assert split_path("/db/doc/a/b.txt") == ["db", "doc", "a", "b.txt"]
    assert split_path("/db/") == ["db"]


async def test_design_docs_encoded_ids_and_head_etag(store: Couch) -> None:
    db = await new_db(store)
    status, body = await store.req("PUT", f"/{db}/_design/app", {"views": {}})
    assert status == 201
    _, same = await store.req("GET", f"/{db}/_design%2Fapp")
    assert same["_rev"] == body["rev"]
    status, written = await store.req("PUT", f"/{db}/a%2Fb%20c", {"x": 1})
    assert status == 201 and written["id"] == "a/b c"
    resp, content = await store.response("HEAD", f"/{db}/a%2Fb%20c")
    assert resp.status == 200 and resp.headers["ETag"] == f'"{written["rev"]}"' and not content


async def test_special_members_are_refused(store: Couch) -> None:
    db = await new_db(store)
    assert await store.req("PUT", f"/{db}/a", {"_foo": 1}) == (
        400,
        {"error": "doc_validation", "reason": "Bad special document member: _foo"},
    )


async def test_new_edits_false_put_and_missing_stub(store: Couch) -> None:
    db = await new_db(store)
    doc = {
        "_rev": "2-b",
        "_revisions": {"start": 2, "ids": ["b", "a"]},
        "_attachments": {
            "x": {"stub": True, "digest": "md5-nothing", "revpos": 1, "content_type": "text/plain"}
        },
    }
    status, body = await store.req("PUT", f"/{db}/d?new_edits=false", doc)
    assert status == 412 and body["error"] == "missing_stub"
    doc["_attachments"] = {}
    assert (await store.req("PUT", f"/{db}/d?new_edits=false", doc))[0] == 201
    _, got = await store.req("GET", f"/{db}/d?revs=true")
    assert got["_revisions"] == {"start": 2, "ids": ["b", "a"]}


async def test_multipart_related_put_as_couchdbs_replicator_sends_it(store: Couch) -> None:
    db = await new_db(store)
    boundary = "abc123"
    doc = {
        "_id": "m",
        "_rev": "1-x",
        "_revisions": {"start": 1, "ids": ["x"]},
        "_attachments": {
            "one.txt": {
                "content_type": "text/plain",
                "revpos": 1,
                "length": 3,
                "follows": True,
                "digest": "md5-ignored",
            },
            "two.bin": {
                "content_type": "application/octet-stream",
                "revpos": 1,
                "length": 4,
                "follows": True,
            },
        },
    }
    body = (
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{json.dumps(doc)}\r\n"
        f"--{boundary}\r\n\r\none\r\n"
        f"--{boundary}\r\n\r\n\x00\x01\x02\x03\r\n--{boundary}--"
    ).encode("latin-1")
    status, written = await store.req(
        "PUT",
        f"/{db}/m?new_edits=false",
        data=body,
        headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
    )
    assert status == 201 and written["rev"] == "1-x"
    assert (await store.req("GET", f"/{db}/m/one.txt", raw=True))[1] == b"one"
    assert (await store.req("GET", f"/{db}/m/two.bin", raw=True))[1] == b"\x00\x01\x02\x03"


async def test_multipart_related_get_and_open_revs_mixed(store: Couch) -> None:
    db = await new_db(store)
    data = base64.b64encode(b"payload").decode()
    await store.req(
        "PUT", f"/{db}/d", {"_attachments": {"p.txt": {"content_type": "text/plain", "data": data}}}
    )
    resp, content = await store.response(
        "GET", f"/{db}/d?attachments=true", headers={"Accept": "multipart/related"}
    )
    assert resp.content_type == "multipart/related"
    parts = multipart.parse(content, multipart.boundary_of(resp.headers["Content-Type"]))
    first = json.loads(parts[0][1])
    assert first["_attachments"]["p.txt"]["follows"] is True and parts[1][1] == b"payload"
    resp, content = await store.response(
        "GET",
        f'/{db}/d?open_revs=["{first["_rev"]}","9-z"]&attachments=true',
        headers={"Accept": "multipart/mixed"},
    )
    assert resp.content_type == "multipart/mixed"
    mixed = multipart.parse(content, multipart.boundary_of(resp.headers["Content-Type"]))
    assert mixed[0][0]["content-type"].startswith("multipart/related")
    assert b"payload" in mixed[0][1]
    assert json.loads(mixed[1][1]) == {"missing": "9-z"}


async def test_longpoll_wakes_as_soon_as_a_write_commits(store: Couch) -> None:
    db = await new_db(store)

    async def poll() -> tuple[float, Any]:
        start = time.monotonic()
        _, body = await store.req("GET", f"/{db}/_changes?feed=longpoll&since=now&timeout=10000")
        return time.monotonic() - start, body

    waiter = asyncio.create_task(poll())
    await asyncio.sleep(0.3)
    await store.req("PUT", f"/{db}/wake", {})
    elapsed, body = await waiter
    assert 0.25 < elapsed < 2
    assert [r["id"] for r in body["results"]] == ["wake"] and body["last_seq"] == 1


async def test_longpoll_times_out_empty(store: Couch) -> None:
    db = await new_db(store)
    status, body = await store.req("GET", f"/{db}/_changes?feed=longpoll&timeout=200")
    assert status == 200 and body == {"results": [], "last_seq": 0, "pending": 0}


async def test_continuous_feed_streams_rows_heartbeats_and_ends_on_limit(store: Couch) -> None:
    db = await new_db(store)
    await store.req("PUT", f"/{db}/first", {})
    url = f"{store.url}/{db}/_changes?feed=continuous&heartbeat=100&limit=2"
    async with store.session.get(url) as resp:
        line = await resp.content.readline()
        assert json.loads(line)["id"] == "first"
        heartbeat = await resp.content.readline()
        assert heartbeat == b"\n"
        await store.req("PUT", f"/{db}/second", {})
        rest = [json.loads(x) for x in (await resp.content.read()).split(b"\n") if x.strip()]
    assert rest[0]["id"] == "second" and rest[-1] == {"last_seq": 2, "pending": 0}


async def test_eventsource_feed(store: Couch) -> None:
    db = await new_db(store)
    await store.req("PUT", f"/{db}/e", {})
    url = f"{store.url}/{db}/_changes?feed=eventsource&timeout=300"
    async with store.session.get(url) as resp:
        assert resp.content_type == "text/event-stream"
        text = (await resp.content.read()).decode()
    assert text.startswith("data: ") and '"id":"e"' in text and "\nid: 1\n" in text


async def test_changes_doc_ids_via_get_and_bad_since(store: Couch) -> None:
    db = await new_db(store)
    await store.req("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "a"}, {"_id": "b"}]})
    _, body = await store.req("GET", f'/{db}/_changes?filter=_doc_ids&doc_ids=["b"]')
    assert [r["id"] for r in body["results"]] == ["b"]
    assert await store.req("GET", f"/{db}/_changes?since=bogus") == (
        400,
        {"error": "bad_request", "reason": "Malformed sequence supplied in 'since' parameter."},
    )
    _, body = await store.req("GET", f"/{db}/_changes?since=1-g1AAAAB")
    assert [r["id"] for r in body["results"]] == ["b"]


async def test_concurrent_writers_never_lose_an_update(store: Couch) -> None:
    """Many clients increment one counter with read-modify-write: each success is one step."""
    db = await new_db(store)
    await store.req("PUT", f"/{db}/counter", {"n": 0})
    successes = 0

    async def bump() -> None:
        nonlocal successes
        for _ in range(30):
            _, doc = await store.req("GET", f"/{db}/counter")
            status, _ = await store.req("PUT", f"/{db}/counter", {**doc, "n": doc["n"] + 1})
            assert status in (201, 409)
            successes += status == 201

    await asyncio.gather(*(bump() for _ in range(8)))
    _, doc = await store.req("GET", f"/{db}/counter?conflicts=true")
    assert doc["n"] == successes and "_conflicts" not in doc


async def test_deleting_a_database_removes_its_data(store: Couch) -> None:
    db = await new_db(store)
    await store.req(
        "PUT",
        f"/{db}/a",
        {
            "_attachments": {
                "x": {"content_type": "text/plain", "data": base64.b64encode(b"secret").decode()}
            }
        },
    )
    assert await store.req("DELETE", f"/{db}") == (200, {"ok": True})
    assert (await store.req("GET", f"/{db}/a"))[0] == 404
    assert (await store.req("PUT", f"/{db}"))[0] == 201
    _, info = await store.req("GET", f"/{db}")
    assert info["doc_count"] == 0 and info["update_seq"] == 0


async def test_changes_selector_filter(store: Couch) -> None:
    db = await new_db(store)
    docs = [
        {"_id": "a", "kind": "note", "n": 1},
        {"_id": "b", "kind": "task", "n": 5},
        {"_id": "c", "kind": "note", "n": 9},
    ]
    await store.req("POST", f"/{db}/_bulk_docs", {"docs": docs})
    _, body = await store.req(
        "POST", f"/{db}/_changes?filter=_selector", {"selector": {"kind": "note", "n": {"$gt": 3}}}
    )
    assert [r["id"] for r in body["results"]] == ["c"] and body["last_seq"] == 3
    status, body = await store.req(
        "POST", f"/{db}/_changes?filter=_selector", {"selector": {"n": {"$regex": "x"}}}
    )
    assert status == 400 and body["error"] == "bad_request"


async def test_filtered_feed_last_seq_moves_past_unmatched_changes(store: Couch) -> None:
    db = await new_db(store)
    await store.req("POST", f"/{db}/_bulk_docs", {"docs": [{"_id": "a"}, {"_id": "b"}]})
    _, body = await store.req("POST", f"/{db}/_changes?filter=_doc_ids", {"doc_ids": ["a"]})
    assert [r["id"] for r in body["results"]] == ["a"] and body["last_seq"] == 2
