"""The engine's API for a replica that edits offline (the folder client's local store): edits
kept as branches under the revision they were made from, and the count of documents still in
conflict. The store's HTTP side does not use either; its behaviour is the conformance suite's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from couchlite import changes, engine, reads, revtree
from couchlite.documents import parse_edit
from couchlite.errors import Conflict, CouchError
from couchlite.storage import Storage

DB = "replica"


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    store = Storage(tmp_path / "store.sqlite3", readers=1)
    await store.open()
    await store.write(engine.create_db, DB)
    try:
        yield store
    finally:
        await store.close()


def child(body: dict[str, Any], parent: str | None, rev: str) -> engine.Child:
    return engine.Child(parse_edit(body, new_edits=True), parent, rev)


async def tree_of(storage: Storage, doc_id: str) -> reads.StoredDoc:
    def load(conn: Any) -> reads.StoredDoc | None:
        return reads.load_doc(conn, engine.get_db(conn, DB).id, doc_id)

    found = await storage.read(load)
    assert found is not None
    return found


async def edit(storage: Storage, body: dict[str, Any]) -> str:
    (done,) = await storage.write(
        engine.update_docs, DB, [parse_edit(body, new_edits=True)], new_edits=True
    )
    if isinstance(done, CouchError):
        raise done
    return done.rev


async def test_an_edit_of_a_superseded_revision_becomes_a_branch(storage: Storage) -> None:
    first = await edit(storage, {"_id": "n", "v": 1})
    second = await edit(storage, {"_id": "n", "_rev": first, "v": 2})
    with pytest.raises(Conflict):  # what an interactive edit of the old revision gets
        await edit(storage, {"_id": "n", "_rev": first, "v": "offline"})

    mine = "2-" + "f" * 32
    assert await storage.write(
        engine.add_children, DB, [child({"_id": "n", "v": "offline"}, first, mine)]
    ) == [mine]
    stored = await tree_of(storage, "n")
    assert sorted(revtree.leaves(stored.tree)) == sorted([second, mine])
    assert stored.tree[mine].parent == first  # under the revision it was made from
    assert revtree.winner(stored.tree) == max(second, mine, key=revtree.rev_order)
    body = await storage.read(reads.open_revs, DB, "n", [mine], reads.DocOptions())
    assert body[0][1] is not None and body[0][1].doc["v"] == "offline"

    # A child of that branch extends it, and a parent known only by id is kept as such.
    deeper = "3-" + "e" * 32
    await storage.write(engine.add_children, DB, [child({"_id": "n", "v": 3}, mine, deeper)])
    assert revtree.ancestry((await tree_of(storage, "n")).tree, deeper) == [deeper, mine, first]
    stranger = "5-" + "d" * 32
    await storage.write(
        engine.add_children, DB, [child({"_id": "other"}, "4-" + "c" * 32, stranger)]
    )
    assert revtree.ancestry((await tree_of(storage, "other")).tree, stranger) == [
        stranger,
        "4-" + "c" * 32,
    ]


async def test_children_are_written_all_or_none(storage: Storage) -> None:
    good = child({"_id": "a", "v": 1}, None, "1-" + "a" * 32)
    refused = child({"_id": "b", "_attachments": {"x": {"stub": True}}}, None, "1-" + "b" * 32)
    with pytest.raises(CouchError):
        await storage.write(engine.add_children, DB, [good, refused])
    with pytest.raises(ValueError):
        await storage.write(engine.add_children, DB, [child({"_id": "a"}, None, "2-" + "a" * 32)])

    def count(conn: Any) -> int:
        return int(conn.execute("SELECT count(*) FROM docs").fetchone()[0])

    assert await storage.read(count) == 0


async def test_conflicted_count(storage: Storage) -> None:
    assert await storage.read(reads.conflicted_count, DB) == 0
    base = await edit(storage, {"_id": "n", "v": 0})
    await edit(storage, {"_id": "calm"})
    a, b = "2-" + "a" * 32, "2-" + "b" * 32
    await storage.write(
        engine.add_children,
        DB,
        [child({"_id": "n", "v": "a"}, base, a), child({"_id": "n", "v": "b"}, base, b)],
    )
    assert await storage.read(reads.conflicted_count, DB) == 1
    # Settled: the losing leaf closed with a tombstone.
    await storage.write(
        engine.add_children, DB, [child({"_id": "n", "_deleted": True}, a, "3-" + "a" * 32)]
    )
    assert await storage.read(reads.conflicted_count, DB) == 0


async def test_a_document_twice_in_one_call_is_written_under_its_first_revision(
    storage: Storage,
) -> None:
    """A scan's batch is one call, written as few updates as it can be; a document in it twice
    (an edit of the revision made just before) still goes under that revision."""
    first, again, other = "1-" + "a" * 32, "2-" + "b" * 32, "1-" + "c" * 32
    written = await storage.write(
        engine.add_children,
        DB,
        [
            child({"_id": "n", "v": 1}, None, first),
            child({"_id": "m"}, None, other),
            child({"_id": "n", "v": 2}, first, again),
        ],
    )
    assert written == [first, other, again]
    assert revtree.ancestry((await tree_of(storage, "n")).tree, again) == [again, first]
    assert revtree.leaves((await tree_of(storage, "n")).tree) == [again]
    query = changes.ChangesQuery(since=0, limit=10, all_docs=True)
    page = await storage.read(changes.read_changes, DB, query)
    assert sorted(row["id"] for row in page.rows) == ["m", "n"]
    assert page.last_seq == 3  # n and m, then n again
