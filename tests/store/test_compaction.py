"""Compaction: old revision bodies and unreferenced attachment blobs go, the file shrinks, and
nothing a replica can still ask for changes (leaves, conflicts, winner, live attachments)."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer

from couchlite.server.state import STATE
from tests.store.conftest import Couch, fresh_db_name
from tests.store.helpers import compact


def file_size(server: TestServer) -> int:
    path = server.app[STATE].storage.path
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def churn(store: Couch, db: str) -> dict[str, Any]:
    """Many edits of a few documents, replaced attachments and a replicated conflict."""
    assert (await store.req("PUT", f"/{db}"))[0] == 201
    revs: dict[str, str] = {}
    for n in range(60):
        for doc_id in ("a", "b", "c"):
            body: dict[str, Any] = {"n": n, "pad": os.urandom(1500).hex()}
            if doc_id in revs:
                body["_rev"] = revs[doc_id]
            if doc_id == "a":
                blob = os.urandom(4000) if n < 59 else b"the live attachment"
                body["_attachments"] = {
                    "f.bin": {"content_type": "application/octet-stream", "data": b64(blob)}
                }
            status, written = await store.req("PUT", f"/{db}/{doc_id}", body)
            assert status == 201
            revs[doc_id] = written["rev"]
    conflict = {"_id": "b", "_rev": "2-zzz", "_revisions": {"start": 2, "ids": ["zzz", "yyy"]}}
    status, _ = await store.req(
        "POST", f"/{db}/_bulk_docs", {"docs": [conflict], "new_edits": False}
    )
    assert status == 201
    return revs


async def observed(store: Couch, db: str) -> Any:
    """What a replica can see: every leaf with its history, conflicts and attachment bodies."""
    out: dict[str, object] = {}
    for doc_id in ("a", "b", "c"):
        _, leaves = await store.req(
            "GET", f"/{db}/{doc_id}?open_revs=all&revs=true&attachments=true"
        )
        _, winner = await store.req("GET", f"/{db}/{doc_id}?conflicts=true")
        out[doc_id] = (sorted(leaves, key=lambda r: r["ok"]["_rev"]), winner)
    _, changes = await store.req("GET", f"/{db}/_changes?style=all_docs")
    out["changes"] = [(r["id"], r["changes"]) for r in changes["results"]]
    return out


async def wait_compacted(store: Couch, db: str) -> None:
    while True:
        _, info = await store.req("GET", f"/{db}")
        if not info["compact_running"]:
            return
        await asyncio.sleep(0.05)


async def test_compact_frees_old_bodies_and_blobs_keeps_what_replicas_see(
    store: Couch, store_server: TestServer
) -> None:
    db = fresh_db_name("c")
    revs = await churn(store, db)
    before = await observed(store, db)
    _, info = await store.req("GET", f"/{db}")
    _, first_a = await store.req("GET", f"/{db}/a?revs=true")
    oldest = f"{first_a['_revisions']['start'] - 10}-{first_a['_revisions']['ids'][10]}"
    assert (await store.req("GET", f"/{db}/a?rev={oldest}"))[0] == 200
    size_before = file_size(store_server)

    assert await store.req(
        "POST", f"/{db}/_compact", headers={"Content-Type": "application/json"}
    ) == (202, {"ok": True})
    await wait_compacted(store, db)
    # Give the pages back as the on-demand CLI does (the endpoint's run only reuses them).
    await store_server.app[STATE].storage.compact(full=True)

    assert await observed(store, db) == before
    assert await store.req("GET", f"/{db}/a?rev={oldest}") == (
        404,
        {"error": "not_found", "reason": "missing"},
    )
    _, live = await store.req("GET", f"/{db}/a/f.bin", raw=True)
    assert live == b"the live attachment"
    _, info_after = await store.req("GET", f"/{db}")
    assert info_after["doc_count"] == info["doc_count"] == 3
    assert info_after["sizes"]["active"] < info["sizes"]["active"] / 10
    assert file_size(store_server) < size_before / 2
    # Edits go on from the compacted leaves.
    status, _ = await store.req("PUT", f"/{db}/a", {"_rev": revs["a"], "after": True})
    assert status == 201


async def test_replication_after_compaction(store: Couch, store_server: TestServer) -> None:
    """What a replicator does, done by hand: changes, revs_diff, then every missing leaf."""
    db = fresh_db_name("c")
    await churn(store, db)
    await store_server.app[STATE].storage.compact(full=True)
    _, changes = await store.req("GET", f"/{db}/_changes?style=all_docs")
    wanted = {r["id"]: [c["rev"] for c in r["changes"]] for r in changes["results"]}
    _, diff = await store.req("POST", f"/{db}/_revs_diff", wanted)
    assert diff == {}
    target = fresh_db_name("c")
    await store.req("PUT", f"/{target}")
    for doc_id, leaves in wanted.items():
        _, found = await store.req(
            "GET", f"/{db}/{doc_id}?open_revs=all&revs=true&attachments=true"
        )
        docs = [row["ok"] for row in found]
        assert sorted(d["_rev"] for d in docs) == sorted(leaves)
        status, errors = await store.req(
            "POST", f"/{target}/_bulk_docs", {"docs": docs, "new_edits": False}
        )
        assert (status, errors) == (201, [])
    for doc_id in wanted:
        _, source = await store.req("GET", f"/{db}/{doc_id}?conflicts=true&attachments=true")
        _, copied = await store.req("GET", f"/{target}/{doc_id}?conflicts=true&attachments=true")
        assert copied == source


async def test_couchdb_replicates_with_the_compacted_store(
    store: Couch, store_server: TestServer, couchdb: Couch
) -> None:
    """CouchDB's own replicator pulls from the compacted store and pushes back into a fresh
    store database: every leaf, conflict and attachment arrives."""
    db = fresh_db_name("c")
    await churn(store, db)
    await store_server.app[STATE].storage.compact(full=True)
    auth = {"Authorization": store.session.headers["Authorization"]}
    copy, back = fresh_db_name("c"), fresh_db_name("c")
    await store.req("PUT", f"/{back}")
    for source, target in (
        ({"url": f"{store.url}/{db}", "headers": auth}, copy),
        (copy, {"url": f"{store.url}/{back}", "headers": auth}),
    ):
        status, result = await couchdb.req(
            "POST", "/_replicate", {"source": source, "target": target, "create_target": True}
        )
        assert status == 200 and result["ok"] is True, result
    for doc_id in ("a", "b", "c"):
        path = f"{doc_id}?conflicts=true&attachments=true&revs=true"
        _, mine = await store.req("GET", f"/{db}/{path}")
        _, theirs = await couchdb.req("GET", f"/{copy}/{path}")
        _, returned = await store.req("GET", f"/{back}/{path}")
        assert theirs == mine == returned
    await couchdb.req("DELETE", f"/{copy}")


async def test_background_compaction_after_many_writes(tmp_path: Path) -> None:
    from couchlite import engine
    from couchlite.documents import parse_edit
    from couchlite.storage import Storage

    storage = Storage(tmp_path / "store.sqlite3", auto_compact_every=50)
    await storage.open()
    try:
        await storage.write(engine.create_db, "auto")
        rev = None
        for n in range(49):
            body: dict[str, Any] = {"_id": "d", "n": n, "pad": "x" * 500}
            if rev:
                body["_rev"] = rev
            (written,) = await storage.write(
                engine.update_docs, "auto", [parse_edit(body, new_edits=True)], new_edits=True
            )
            assert isinstance(written, engine.Written)
            rev = written.rev
        await storage.compaction_finished()

        def bodies(conn: Any) -> int:
            return int(conn.execute("SELECT count(*) FROM revs").fetchone()[0])

        assert await storage.read(bodies) == 1
    finally:
        await storage.close()


def test_cli_compacts_a_store_directory(tmp_path: Path) -> None:
    """``couchgate store compact --data-dir`` in its own process, on a store another process
    wrote (python -m couchlite), while that store keeps serving."""
    import urllib.request

    from tests.store.helpers import running_store

    data = tmp_path / "data"
    with running_store(data) as server:
        token = base64.b64encode(f"{server.user}:{server.password}".encode()).decode()

        def call(method: str, path: str, body: bytes | None = None) -> Any:
            req = urllib.request.Request(
                server.url + path,
                data=body,
                method=method,
                headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=30) as resp:
                return __import__("json").loads(resp.read())

        call("PUT", "/cli")
        rev = None
        for n in range(100):
            body = {"n": n, "pad": "y" * 2000, **({"_rev": rev} if rev else {})}
            rev = call("PUT", "/cli/d", __import__("json").dumps(body).encode())["rev"]
        done = compact(data, 120, env_data_dir=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "99 old revision bodies" in done.stdout
        assert call("GET", "/cli/d")["_rev"] == rev
        assert call("GET", "/cli")["sizes"]["active"] < 3000
    missing = compact(tmp_path, 60)
    assert missing.returncode == 1 and "no embedded store" in missing.stderr
