"""Two folder devices, real ``couchgate-sync`` processes, through a real couchgate (embedded
store, pouchdb-server, and CouchDB when present) that requires encryption."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import random
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyfastcdc import FastCDC

from couchgate_sync import chunks, notes
from encryption_plugin import Keyring, id_for, open_doc
from gateway.upstream.backend import db_name
from tests.harness import GatewayHarness
from tests.sync.devices import FolderDevice, credentials_of, joined_user, settle

# For what does not depend on the upstream (the folder side, the gateway's auth): one run, on
# the embedded store, keeps the module's cost down.
embedded_only = pytest.mark.parametrize("gateway_upstream", ["embedded"], indirect=True)


async def test_create_edit_rename_delete_propagate(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, b = devices
    a.write("hello.md", "# Hello\n\nfirst words\n")
    a.write("Daily/2026-12-01.md", "today\n")
    await a.sync()
    await b.sync()
    assert b.files() == a.files()

    (a.folder / "hello.md").write_text("# Hello\n\nsecond words\n")
    (a.folder / "Daily/2026-12-01.md").rename(a.folder / "Daily/renamed.md")
    await a.sync()
    await b.sync()
    assert b.files() == {
        "hello.md": b"# Hello\n\nsecond words\n",
        "Daily/renamed.md": b"today\n",
    }

    (b.folder / "hello.md").unlink()
    await b.sync()
    await a.sync()
    assert a.files() == {"Daily/renamed.md": b"today\n"}


async def test_offline_edits_of_different_lines_merge(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, b = devices
    a.write("plan.md", "one\ntwo\nthree\nfour\nfive\n")
    await settle(a, b)
    a.write("plan.md", "ONE from the laptop\ntwo\nthree\nfour\nfive\n")
    b.write("plan.md", "one\ntwo\nthree\nfour\nFIVE from the phone\n")
    await a.sync()
    await settle(b, a)
    expected = b"ONE from the laptop\ntwo\nthree\nfour\nFIVE from the phone\n"
    assert a.files() == b.files() == {"plan.md": expected}


async def test_overlapping_offline_edits_keep_a_conflict_copy(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    a, b = devices
    a.write("Ideas/list.md", "first line\n")
    await settle(a, b)
    a.write("Ideas/list.md", "the laptop's version\n")
    b.write("Ideas/list.md", "the phone's version\n")
    a.write("both.md", "made on the laptop\n")  # one new path made on both: no ancestor
    b.write("both.md", "made on the phone\n")
    await a.sync()
    await settle(b, a)
    files = a.files()
    assert files == b.files()
    both = {k: v for k, v in files.items() if k.startswith("both")}
    assert sorted(both.values()) == [b"made on the laptop\n", b"made on the phone\n"]
    files = {k: v for k, v in files.items() if k.startswith("Ideas/")}
    assert sorted(files.values()) == [b"the laptop's version\n", b"the phone's version\n"]
    (copy,) = [p for p in files if p != "Ideas/list.md"]
    loser = "phone" if files["Ideas/list.md"] == b"the laptop's version\n" else "laptop"
    assert re.fullmatch(
        rf"Ideas/list \(conflict from {loser} \d{{4}}-\d\d-\d\d \d{{4}}\)\.md", copy
    ), copy
    # The resolution reached the server: no document there is left in conflict.
    db = db_name(joined_user(a), "notes")
    _, stored = await sealed_gateway.peek("GET", f"/{db}/_all_docs")
    for row in stored["rows"]:
        _, doc = await sealed_gateway.peek("GET", f"/{db}/{row['id']}?conflicts=true")
        assert "_conflicts" not in doc


async def test_binary_files_are_byte_identical(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, b = devices
    picture = bytes(range(256)) * 800 + os.urandom(4096)
    a.write("Attachments/picture.png", picture)
    a.write("empty.txt", b"")
    a.write("latin1.txt", "café".encode("latin-1"))  # not UTF-8: kept as bytes
    a.write("crlf.md", b"windows\r\nline endings\r\n\xef\xbb\xbfBOM\n")
    await settle(a, b, rounds=1)
    assert b.files() == a.files()

    a.write("Attachments/picture.png", picture + b"laptop")
    b.write("Attachments/picture.png", picture + b"phone")
    await a.sync()
    await settle(b, a)
    files = a.files()
    assert files == b.files()
    pictures = sorted(v for k, v in files.items() if k.startswith("Attachments/picture"))
    assert pictures == [picture + b"laptop", picture + b"phone"]


async def test_large_files_go_in_chunks_and_an_edit_uploads_one_chunk(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    a, b = devices
    for n in range(3):  # about 4 MiB each as JSON: more than one 8 MiB _bulk_docs body
        a.write(f"media/{n}.bin", os.urandom(3 * 1024 * 1024))
    big = bytearray(os.urandom(10 * 1024 * 1024))
    a.write("video.mp4", bytes(big))
    await a.sync()
    await b.sync()
    assert b.files() == a.files()
    db = db_name(joined_user(a), "notes")
    pieces = chunks.cuts(bytes(big), keyring_of(a))
    before = await server_docs(sealed_gateway, db)
    assert len(before) == 3 + 1 + len(pieces)  # the small files, the big one, its chunks
    assert {cut.id for cut in pieces} <= before.keys()

    big[5 * 1024 * 1024] ^= 0xFF  # one byte, in place
    a.write("video.mp4", bytes(big))
    await a.sync()
    new = (await server_docs(sealed_gateway, db)).keys() - before.keys()
    kinds = sorted([await kind_on_server(sealed_gateway, db, i, keyring_of(a)) for i in new])
    assert kinds in (["chunk", "version"], ["chunk", "chunk", "version"])  # a cut may move
    await b.sync()
    assert b.files()["video.mp4"] == bytes(big)
    assert b.files() == a.files()


async def test_an_insertion_near_the_start_of_a_large_file_uploads_a_chunk_or_two(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    a, b = devices
    talk = random.Random(13).randbytes(24 * 1024 * 1024)  # about twenty chunks
    a.write("Recordings/talk.wav", talk)
    await a.sync()
    await b.sync()
    db = db_name(joined_user(a), "notes")
    before = await server_docs(sealed_gateway, db)

    edited = talk[:1000] + b"a few words inserted near the start" + talk[1000:]
    a.write("Recordings/talk.wav", edited)
    await a.sync()
    keyring = keyring_of(a)
    new = (await server_docs(sealed_gateway, db)).keys() - before.keys()
    sent = {i: await kind_on_server(sealed_gateway, db, i, keyring) for i in new}
    new_chunks = [i for i, kind in sent.items() if kind == "chunk"]
    assert sorted(sent.values()).count("version") == 1 and len(new_chunks) == len(new) - 1
    # Fixed 4 MiB offsets made this every chunk of the file: six, 24 MiB.
    assert 1 <= len(new_chunks) <= 3, len(new_chunks)
    sent_bytes = sum([await attachment_bytes(sealed_gateway, db, i) for i in new_chunks])
    assert sent_bytes <= 3 * chunks.MAX_BYTES < len(talk)
    await b.sync()
    assert b.files() == {"Recordings/talk.wav": edited}


@embedded_only
async def test_a_file_in_the_old_fixed_offset_chunks_still_opens(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    """Documents written before chunks were cut by content (4 MiB pieces) open as they are,
    and their first edit re-cuts the file."""
    a, b = devices
    data = os.urandom(9 * 1024 * 1024)
    old_pieces = [data[i : i + 4 * 1024 * 1024] for i in range(0, len(data), 4 * 1024 * 1024)]
    await put_in_pieces(sealed_gateway, a, "old.bin", old_pieces)
    await b.sync()
    assert b.files() == {"old.bin": data}
    b.write("old.bin", data + b"appended")
    await b.sync()
    await a.sync()
    assert a.files() == {"old.bin": data + b"appended"}


@embedded_only
async def test_a_file_cut_under_the_old_seed_still_opens_and_is_not_cut_again(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    """Files cut before the cutter seed had a label of its own (it was made from the id of the
    path "chunk cut points") open as they are; syncing them unchanged sends nothing, and their
    next edit cuts them under the new seed."""
    a, b = devices
    keyring = keyring_of(a)
    data = random.Random(20).randbytes(9 * 1024 * 1024)
    material = id_for("chunk cut points", keyring).encode("ascii")
    old_seed = (int.from_bytes(hashlib.sha256(material).digest()[:8], "big") >> 1) | 1
    cutter = FastCDC(
        chunks.AVG_BYTES, min_size=chunks.MIN_BYTES, max_size=chunks.MAX_BYTES, seed=old_seed
    )
    old_pieces = [bytes(c.data) for c in cutter.cut_buf(data)]
    assert [len(p) for p in old_pieces] != [c.length for c in chunks.cuts(data, keyring)]
    await put_in_pieces(sealed_gateway, a, "old-cut.bin", old_pieces)
    await b.sync()
    await a.sync()
    assert a.files() == b.files() == {"old-cut.bin": data}
    db = db_name(joined_user(a), "notes")
    before = await server_docs(sealed_gateway, db)
    await b.sync()
    await a.sync()
    assert await server_docs(sealed_gateway, db) == before  # nothing re-cut, nothing sent
    b.write("old-cut.bin", data + b"appended")
    await b.sync()
    await a.sync()
    assert a.files() == {"old-cut.bin": data + b"appended"}


@embedded_only
async def test_ignore_rules_hold(devices: tuple[FolderDevice, FolderDevice]) -> None:
    a, b = devices
    a.write(".couchgateignore", "private/\n*.log\n!keep.log\n")
    a.write("note.md", "synced\n")
    a.write("private/diary.md", "not synced\n")
    a.write("build.log", "not synced\n")
    a.write("keep.log", "synced\n")
    a.write(".DS_Store", "not synced\n")
    a.write(".obsidian/workspace.json", "{}")
    a.write(".obsidian/app.json", "{}")
    a.write(".git/HEAD", "ref: refs/heads/main\n")
    a.write(".note.md.swp", "swap")
    await settle(a, b, rounds=1)
    assert sorted(b.files()) == [".couchgateignore", ".obsidian/app.json", "keep.log", "note.md"]


async def test_names_and_contents_never_reach_the_server(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    a, b = devices
    marker = "zebra-marker-7f3a"
    a.write(f"{marker}-folder/{marker}.md", f"text with {marker} inside\n")
    a.write("plain.md", f"{marker}\n")
    a.write(f"{marker}.bin", marker.encode() + b"\0binary")
    await a.sync()
    (a.folder / "plain.md").write_text(f"edited {marker}\n")
    await a.sync()
    await b.sync()
    db = db_name(joined_user(a), "notes")
    status, everything = await sealed_gateway.peek("GET", f"/{db}/_all_docs?include_docs=true")
    assert status == 200 and len(everything["rows"]) == 4  # 3 files, 1 kept version
    _, changes = await sealed_gateway.peek("GET", f"/{db}/_changes?include_docs=true")
    seen = json.dumps(everything) + json.dumps(changes)
    sealed_attachments = 0
    for row in everything["rows"]:
        doc = row["doc"]
        assert {k for k in doc if not k.startswith("_")} == {"e2e"}
        _, full = await sealed_gateway.peek("GET", f"/{db}/{doc['_id']}?attachments=true")
        for att in full.get("_attachments", {}).values():
            seen += base64.b64decode(att["data"]).decode("latin-1")
            sealed_attachments += 1
    assert sealed_attachments == 1  # the binary file, as ciphertext
    assert marker not in seen
    assert marker.encode().hex() not in seen


@embedded_only
async def test_kill_9_during_a_first_sync_then_restart(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, b = devices
    for n in range(1000):
        a.write(f"Notes/{n // 100}/note {n}.md", f"# Note {n}\n\n" + "words " * (n % 40) + "\n")
    await a.sync()
    proc = await b.start("sync", str(b.folder))
    await until(lambda: len(list(b.folder.rglob("*.md"))) >= 100 or proc.returncode is not None)
    assert proc.returncode is None, "the first sync ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    assert 0 < len(list(b.folder.rglob("*.md"))) < 1000
    await b.sync()
    await a.sync()
    assert b.files() == a.files()
    assert len(a.files()) == 1000


@embedded_only
async def test_a_revoked_device_stops_and_touches_no_file(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    a, b = devices
    a.write("shared.md", "v1\n")
    await settle(a, b, rounds=1)
    creds = credentials_of(b)
    status, me = await sealed_gateway.call(
        "GET", "/auth/me", headers={"Authorization": f"Bearer {creds['token']}"}
    )
    assert status == 200
    await sealed_gateway.call(
        "DELETE",
        f"/auth/devices/{me['device']}",
        headers={"Authorization": f"Bearer {creds['token']}"},
    )
    a.write("shared.md", "v2\n")
    a.write("new.md", "new\n")
    (a.folder / "shared.md").touch()
    await a.sync()
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in b.folder.rglob("*")}
    code, _, err = await b.cli("sync", str(b.folder), ok=False)
    assert code == 3
    assert "revoked" in err
    await b.run_live()
    assert b.live is not None
    code = await asyncio.wait_for(b.live.wait(), 60)
    assert code == 3
    assert "revoked" in (b.home / "run.log").read_text()
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in b.folder.rglob("*")}
    assert after == before


async def test_run_follows_the_folder_and_the_server(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, b = devices
    await a.run_live()
    await b.run_live()
    a.write("live.md", "from the laptop\n")
    await until(lambda: b.files().get("live.md") == b"from the laptop\n")
    code, _, err = await b.cli("run", str(b.folder), ok=False)
    assert code == 1 and "already going for this folder" in err
    (b.folder / "live.md").write_text("edited on the phone\n")
    await until(lambda: a.files().get("live.md") == b"edited on the phone\n")
    (a.folder / "live.md").rename(a.folder / "moved.md")
    await until(lambda: b.files() == {"moved.md": b"edited on the phone\n"})
    (b.folder / "moved.md").unlink()
    await until(lambda: a.files() == {})


async def until(condition: Callable[[], bool], *, within_s: float = 30.0) -> None:
    """Wait for ``condition`` (a liveness check, not a speed one: bench/ measures speed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not condition():
        assert loop.time() < deadline, "the change did not arrive"
        await asyncio.sleep(0.01)


async def test_history_restore_and_deleted_files_survive_compaction(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice], tmp_path: Path
) -> None:
    a, b = devices
    a.write("essay.md", "draft one\n")
    await a.sync()
    a.write("essay.md", "draft two, longer\n")
    a.write("gone.md", "soon deleted\n")
    await a.sync()
    (a.folder / "gone.md").unlink()
    await a.sync()
    db = db_name(joined_user(a), "notes")
    status, _ = await sealed_gateway.peek("POST", f"/{db}/_compact", {})
    assert status in (202, 404)  # the embedded store has nothing to compact

    # A device that joins now finds the old versions on the server.
    c = FolderDevice(tmp_path / "home-c", tmp_path / "Notes C", "tablet", sealed_gateway.url)
    await c.join("--pair", await a.pairing_link())
    await c.sync()
    assert c.files() == {"essay.md": b"draft two, longer\n"}
    _, listing, _ = await c.cli("history", "essay.md", "--dir", str(c.folder))
    assert [line.split()[0] for line in listing.splitlines()[1:]] == ["1", "2"]
    assert "(current)" in listing.splitlines()[2]
    _, deleted, _ = await c.cli("history", "--deleted", "--dir", str(c.folder))
    assert deleted.startswith("gone.md  (deleted")

    await c.cli("restore", "essay.md", "1", "--dir", str(c.folder))
    await c.cli("restore", "gone.md", "--dir", str(c.folder))
    assert c.files() == {"essay.md": b"draft one\n", "gone.md": b"soon deleted\n"}
    await settle(b, a, rounds=1)
    assert a.files() == b.files() == c.files()
    _, listing, _ = await a.cli("history", "essay.md", "--dir", str(a.folder))
    assert len(listing.splitlines()) == 4  # header, draft one, draft two, draft one again


@embedded_only
async def test_expired_versions_are_pruned(sealed_gateway: GatewayHarness, tmp_path: Path) -> None:
    a = FolderDevice(tmp_path / "home-a", tmp_path / "Notes", "laptop", sealed_gateway.url)
    _, code = await sealed_gateway.enrollment_code()
    await a.join("--code", code, "--keep-days", "30")
    a.write("n.md", "one\n")
    await a.sync()
    a.write("n.md", "two\n")
    await a.sync()  # keeps "one" as a version for 30 days
    db = db_name(joined_user(a), "notes")
    _, everything = await sealed_gateway.peek("GET", f"/{db}/_all_docs")
    assert len(everything["rows"]) == 2
    a.clock_offset_s = 31 * 86400  # the same device, a month later
    await a.sync()
    _, listing, _ = await a.cli("history", "n.md", "--dir", str(a.folder))
    assert len(listing.splitlines()) == 2  # the current content only
    _, everything = await sealed_gateway.peek("GET", f"/{db}/_all_docs")
    assert len(everything["rows"]) == 1


async def test_unused_chunks_are_collected_but_not_those_a_kept_version_needs(
    sealed_gateway: GatewayHarness, tmp_path: Path
) -> None:
    a = FolderDevice(tmp_path / "home-a", tmp_path / "Notes A", "laptop", sealed_gateway.url)
    b = FolderDevice(tmp_path / "home-b", tmp_path / "Notes B", "phone", sealed_gateway.url)
    _, code = await sealed_gateway.enrollment_code()
    await a.join("--code", code, "--keep-days", "2")
    await b.join("--pair", await a.pairing_link())
    keyring = keyring_of(a)
    v1, v2, v3 = (random.Random(n).randbytes(9 * 1024 * 1024) for n in (1, 2, 3))
    first, second, third = ({c.id for c in chunks.cuts(v, keyring)} for v in (v1, v2, v3))
    db = db_name(joined_user(a), "notes")
    day = 86400

    a.write("scan.pdf", v1)
    await a.sync()
    await b.sync()
    a.write("scan.pdf", v2)
    await a.sync()  # v1 kept as a version for two days
    a.clock_offset_s = 2 * day + 3600
    a.write("scan.pdf", v3)
    await a.sync()  # v1's version expires: its chunks are unused, from now on
    live = (await server_docs(sealed_gateway, db)).keys()
    assert first | second | third <= live  # seen unused once: not collected yet

    # Another device uploads a chunk, and writes the file listing it only later.
    late = os.urandom(300 * 1024)
    late_id = chunks.chunk_id(late, keyring)
    await put_sealed(sealed_gateway, a, chunks.seal_chunk(late_id, late, keyring))
    a.clock_offset_s = 3 * day + 7200  # a day after v1's chunks were first seen unused
    await a.sync()
    live = (await server_docs(sealed_gateway, db)).keys()
    assert not first & live, "chunks no file or kept version lists were not deleted"
    assert second <= live  # the kept version of v2 lists them
    assert third <= live and late_id in live
    _, feed = await sealed_gateway.peek("GET", f"/{db}/_changes")
    assert first <= {row["id"] for row in feed["results"] if row.get("deleted")}  # tombstones

    doc_id = notes.doc_id_for("late.bin", keyring)
    doc = notes.seal_note(
        doc_id,
        "late.bin",
        late,
        mtime_ms=1,
        origin="tablet",
        created=None,
        keyring=keyring,
        chunks=[late_id],
    )
    await put_sealed(sealed_gateway, a, doc)
    await b.sync()
    assert b.files() == {"scan.pdf": v3, "late.bin": late}
    await b.cli("restore", "scan.pdf", "1", "--dir", str(b.folder))
    assert b.files()["scan.pdf"] == v2


async def _synced_then_chunk_deleted(
    gateway: GatewayHarness, a: FolderDevice, b: FolderDevice, data: bytes, index: int
) -> tuple[str, str]:
    """``book.pdf`` synced to both devices, then its chunk ``index`` deleted on the server as a
    collection that lost a race would: the database's name and the chunk's id."""
    a.write("book.pdf", data)
    await settle(a, b, rounds=1)
    db = db_name(joined_user(a), "notes")
    victim = chunks.cuts(data, keyring_of(a))[index].id
    rev = (await server_docs(gateway, db))[victim]
    headers = {"Authorization": f"Bearer {credentials_of(a)['token']}"}
    status, _ = await gateway.call("DELETE", f"/db/notes/{victim}?rev={rev}", headers=headers)
    assert status == 200
    return db, victim


@embedded_only
async def test_a_chunk_deleted_while_a_file_still_lists_it_is_brought_back(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice], tmp_path: Path
) -> None:
    """What a collection that lost the race looks like (another device deleted a chunk whose
    file it had not yet received): a device holding the chunk writes it back."""
    a, b = devices
    data = os.urandom(9 * 1024 * 1024)
    db, victim = await _synced_then_chunk_deleted(sealed_gateway, a, b, data, 1)
    a.clock_offset_s = 2 * 3600  # its next survey of the chunks is due
    await a.sync()
    assert victim in await server_docs(sealed_gateway, db)
    c = FolderDevice(tmp_path / "home-c", tmp_path / "Notes C", "tablet", sealed_gateway.url)
    await c.join("--pair", await a.pairing_link())
    await c.sync()
    assert c.files() == {"book.pdf": data}


@embedded_only
async def test_a_chunk_reused_while_another_device_collects_it_comes_back(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice], tmp_path: Path
) -> None:
    """The other side of the race: ``b`` re-uses a chunk it holds just as it is collected
    elsewhere; the device that receives ``b``'s file and holds the chunk writes it back."""
    a, b = devices
    data = os.urandom(9 * 1024 * 1024)
    db, victim = await _synced_then_chunk_deleted(sealed_gateway, a, b, data, 0)
    b.write("book.pdf", data + b"a last page")  # its first chunk is the deleted one, unchanged
    await b.sync()
    await a.sync()  # a's survey is not due: what a applies tells it
    assert victim in await server_docs(sealed_gateway, db)
    c = FolderDevice(tmp_path / "home-c", tmp_path / "Notes C", "tablet", sealed_gateway.url)
    await c.join("--pair", await a.pairing_link())
    await c.sync()
    assert c.files() == {"book.pdf": data + b"a last page"}


@embedded_only
async def test_a_document_whose_path_leaves_the_folder_writes_nothing(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    a, b = devices
    for n, path in enumerate(["../escaped.md", "/etc/absolute.md", "ok/../../up.md"]):
        doc = notes.seal_note(
            f"hostile{n}",
            path,
            b"pwned\n",
            mtime_ms=1,
            origin="x",
            created=None,
            keyring=keyring_of(a),
        )
        await put_sealed(sealed_gateway, a, doc)
    a.write("fine.md", "fine\n")
    await a.sync()
    err = await b.sync()
    assert "skipped a document whose path would leave the folder" in err
    assert b.files() == {"fine.md": b"fine\n"}
    assert not (b.folder.parent / "escaped.md").exists()
    assert not (b.folder.parent / "up.md").exists()


def keyring_of(device: FolderDevice) -> Keyring:
    return Keyring.from_export(credentials_of(device)["key"], app_id="notes")


async def server_docs(gateway: GatewayHarness, db: str) -> dict[str, str]:
    """The live documents the server holds: id -> winning revision."""
    _, listed = await gateway.peek("GET", f"/{db}/_all_docs")
    return {row["id"]: row["value"]["rev"] for row in listed["rows"]}


async def kind_on_server(gateway: GatewayHarness, db: str, doc_id: str, keyring: Keyring) -> str:
    _, doc = await gateway.peek("GET", f"/{db}/{doc_id}")
    return str(open_doc(doc, keyring).get("kind", "file"))


async def attachment_bytes(gateway: GatewayHarness, db: str, doc_id: str) -> int:
    """What the server stores of a document's attachments (sealed: the upload's size)."""
    _, doc = await gateway.peek("GET", f"/{db}/{doc_id}")
    return sum(int(att["length"]) for att in doc.get("_attachments", {}).values())


async def put_in_pieces(
    gateway: GatewayHarness, device: FolderDevice, path: str, pieces: list[bytes]
) -> None:
    """Write a file as an earlier client cut it (``pieces``, in order): its chunks, then it."""
    keyring = keyring_of(device)
    ids = [chunks.chunk_id(piece, keyring) for piece in pieces]
    for cid, piece in zip(ids, pieces, strict=True):
        await put_sealed(gateway, device, chunks.seal_chunk(cid, piece, keyring))
    doc = notes.seal_note(
        notes.doc_id_for(path, keyring),
        path,
        b"".join(pieces),
        mtime_ms=1,
        origin="old",
        created=None,
        keyring=keyring,
        chunks=ids,
    )
    await put_sealed(gateway, device, doc)


async def put_sealed(gateway: GatewayHarness, device: FolderDevice, doc: dict[str, Any]) -> None:
    """Write a sealed document as ``device``'s account would (another client of it)."""
    headers = {
        "Authorization": f"Bearer {credentials_of(device)['token']}",
        "Content-Type": "application/json",
    }
    body = io.BytesIO(json.dumps(doc).encode())  # chunks are large: streamed, not one write
    status, answer = await gateway.call(
        "PUT", f"/db/notes/{doc['_id']}", headers=headers, data=body
    )
    assert status == 201, answer
