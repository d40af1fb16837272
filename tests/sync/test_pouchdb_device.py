"""A PouchDB device (PouchDB under Node with the ep1 plugin) and folder devices (real
``couchgate-sync`` processes) of one account edit the same notes while apart, then sync.

The winner is CouchDB's (highest position, then highest revision id): PouchDB, the server and the
folder device name the same one, the folder device settles the conflict on top of it (a three-way
merge, or a conflict copy when the edits overlap) and PouchDB ends with the same document state.
Run on every upstream the sync tests use: the server's revision trees are part of the outcome.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from couchgate_sync import notes
from couchlite import revtree
from gateway.upstream.backend import db_name
from tests.harness import GatewayHarness
from tests.sync.devices import FolderDevice, joined_user
from tests.sync.pouch_device import PouchDevice

PLAN = "one\ntwo\nthree\nfour\nfive\n"


async def _folder_device(gateway: GatewayHarness, tmp_path: Path, name: str) -> FolderDevice:
    device = FolderDevice(tmp_path / f"home-{name}", tmp_path / name, name, gateway.url)
    _, code = await gateway.enrollment_code()
    await device.join("--code", code)
    return device


async def _server_doc(gateway: GatewayHarness, device: FolderDevice, doc_id: str) -> Any:
    """The document as the upstream itself holds it (winner, ancestry, conflicts)."""
    db = db_name(joined_user(device), "notes")
    status, doc = await gateway.peek(
        "GET", f"/{db}/{quote(doc_id, safe='')}?revs=true&conflicts=true"
    )
    assert status == 200, doc
    return doc


def _edited(doc: dict[str, Any], text: str) -> dict[str, Any]:
    """An edit as a PouchDB app makes it: the note's text, its device and time."""
    kept = {k: v for k, v in doc.items() if k != "_conflicts"}
    return {**kept, "text": text, "device": "pouchdb", "mtime": int(time.time() * 1000)}


async def test_pouchdb_and_a_folder_device_agree_on_the_winner_and_keep_every_word(
    sealed_gateway: GatewayHarness, tmp_path: Path
) -> None:
    folder = await _folder_device(sealed_gateway, tmp_path, "laptop")
    folder.write("plan.md", PLAN)
    folder.write("same.md", "first line\n")
    await folder.sync()
    async with await PouchDevice.pair(sealed_gateway, folder) as pouch:
        await pouch.sync()
        ids = {path: notes.doc_id_for(path, pouch.keyring) for path in ("plan.md", "same.md")}
        plan, _ = await pouch.get(ids["plan.md"])
        same, _ = await pouch.get(ids["same.md"])
        assert plan["text"] == PLAN

        # Apart: each side edits both notes (plan.md on different lines, same.md on the same).
        folder.write("plan.md", PLAN.replace("one", "ONE from the laptop"))
        folder.write("same.md", "the laptop's line\n")
        await pouch.put(_edited(plan, PLAN.replace("five", "FIVE from pouchdb")))
        await pouch.put(_edited(same, "pouchdb's line\n"))
        await folder.sync()
        await pouch.sync()

        # The same winner everywhere, and it is CouchDB's rule's pick.
        winners: dict[str, str] = {}
        texts: dict[str, dict[str, str]] = {}
        for path, doc_id in ids.items():
            doc, leaves = await pouch.get(doc_id)
            revs = [leaf["_rev"] for leaf in leaves]
            assert len(revs) == 2, leaves
            assert doc["_rev"] == max(revs, key=revtree.rev_order)
            assert doc["_conflicts"] == [r for r in revs if r != doc["_rev"]]
            server = await _server_doc(sealed_gateway, folder, doc_id)
            assert server["_rev"] == doc["_rev"] and server["_conflicts"] == doc["_conflicts"]
            winners[path] = doc["_rev"]
            texts[path] = {leaf["_rev"]: leaf["text"] for leaf in leaves}

        await folder.sync()  # it settles both conflicts on top of the winners, and pushes
        await pouch.sync()

        files = folder.files()
        assert files["plan.md"] == b"ONE from the laptop\ntwo\nthree\nfour\nFIVE from pouchdb\n"
        (loser_rev,) = [r for r in texts["same.md"] if r != winners["same.md"]]
        assert files["same.md"] == texts["same.md"][winners["same.md"]].encode()
        loser_device = "pouchdb" if texts["same.md"][loser_rev] == "pouchdb's line\n" else "laptop"
        (copy,) = [p for p in files if p not in ("plan.md", "same.md")]
        assert re.fullmatch(
            rf"same \(conflict from {loser_device} \d{{4}}-\d\d-\d\d \d{{4}}\)\.md", copy
        ), copy
        assert files[copy] == texts["same.md"][loser_rev].encode()

        for path, doc_id in ids.items():
            server = await _server_doc(sealed_gateway, folder, doc_id)
            assert "_conflicts" not in server
            doc, leaves = await pouch.get(doc_id)
            assert doc["_rev"] == server["_rev"] and "_conflicts" not in doc
            assert [leaf["_rev"] for leaf in leaves] == [doc["_rev"]]
            assert doc["text"].encode() == files[path]
            # A merge is a child of the winner; an untouched winner stays as it was.
            if path == "plan.md":
                parent = server["_revisions"]["ids"][1]
                assert f"{revtree.rev_pos(doc['_rev']) - 1}-{parent}" == winners[path]
            else:
                assert doc["_rev"] == winners[path]
        copy_doc, _ = await pouch.get(notes.doc_id_for(copy, pouch.keyring))
        assert copy_doc["text"].encode() == files[copy] and copy_doc["path"] == copy


async def _branch_the_folder_device_never_held(
    gateway: GatewayHarness, tmp_path: Path, pouch_edit: str
) -> tuple[FolderDevice, FolderDevice, PouchDevice, str, str]:
    """``plan.md`` made on ``a`` and read by PouchDB; ``a`` edits line 1, then ``c`` joins (it
    gets that edit, and the first version by id only); PouchDB's edit of the first version
    (``pouch_edit``) reaches the server. Returns ``a``, ``c``, the PouchDB device, the id and
    the first version's revision."""
    a = await _folder_device(gateway, tmp_path, "laptop")
    a.write("plan.md", PLAN)
    await a.sync()
    pouch = await PouchDevice.pair(gateway, a)
    await pouch.sync()
    doc_id = notes.doc_id_for("plan.md", pouch.keyring)
    first, _ = await pouch.get(doc_id)
    a.write("plan.md", PLAN.replace("one", "ONE from the laptop"))
    await a.sync()
    c = FolderDevice(tmp_path / "home-c", tmp_path / "c", "tablet", gateway.url)
    await c.join("--pair", await a.pairing_link())
    await c.sync()
    assert c.files() == a.files()
    await pouch.put(_edited(first, pouch_edit))
    await pouch.sync()
    return a, c, pouch, doc_id, first["_rev"]


async def test_the_common_ancestor_comes_from_the_server_when_this_device_never_held_it(
    sealed_gateway: GatewayHarness, tmp_path: Path
) -> None:
    """Before, the ancestor was looked up in the local store only, and ``c`` made a conflict
    copy of edits that do not overlap."""
    a, c, pouch, doc_id, _ = await _branch_the_folder_device_never_held(
        sealed_gateway, tmp_path, PLAN.replace("five", "FIVE from pouchdb")
    )
    async with pouch:
        await c.sync()  # c settles it: the first version's body is on the server only
        merged = b"ONE from the laptop\ntwo\nthree\nfour\nFIVE from pouchdb\n"
        assert c.files() == {"plan.md": merged}
        await a.sync()
        await pouch.sync()
        assert a.files() == c.files()
        doc, leaves = await pouch.get(doc_id)
        assert "_conflicts" not in doc and len(leaves) == 1
        assert doc["text"].encode() == merged


async def test_an_ancestor_compacted_away_on_the_server_gives_the_conflict_copy(
    sealed_gateway: GatewayHarness, tmp_path: Path
) -> None:
    a, c, pouch, doc_id, first = await _branch_the_folder_device_never_held(
        sealed_gateway, tmp_path, PLAN.replace("five", "FIVE from pouchdb")
    )
    async with pouch:
        db = db_name(joined_user(a), "notes")
        status, _ = await sealed_gateway.peek("POST", f"/{db}/_compact", {})
        assert status == 202
        await _compacted(sealed_gateway, db)
        status, _ = await sealed_gateway.peek("GET", f"/{db}/{quote(doc_id, safe='')}?rev={first}")
        assert status == 404  # the common ancestor's body is gone from the server too
        await c.sync()
        files = c.files()
        assert len(files) == 2 and sorted(files.values()) == sorted(
            [
                PLAN.replace("one", "ONE from the laptop").encode(),
                PLAN.replace("five", "FIVE from pouchdb").encode(),
            ]
        )
        await a.sync()
        assert a.files() == files


async def _compacted(gateway: GatewayHarness, db: str) -> None:
    for _ in range(600):
        _, info = await gateway.peek("GET", f"/{db}")
        if not info.get("compact_running"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the compaction did not finish")
