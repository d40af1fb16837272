"""Empty folders, renames as moves, and file names (NFD, case) between two folder devices:
real ``couchgate-sync`` processes on real folders through a real couchgate (every upstream)."""

from __future__ import annotations

import json
import os
import re
import unicodedata
from pathlib import Path

import pytest

from couchgate_sync import chunks
from couchgate_sync.ignore import MARKER
from gateway.upstream.backend import db_name
from tests.harness import GatewayHarness
from tests.sync.devices import FolderDevice, joined_user, settle
from tests.sync.test_folder_sync import keyring_of, until


async def _live_docs(gateway: GatewayHarness, device: FolderDevice) -> int:
    _, listing = await gateway.peek("GET", f"/{db_name(joined_user(device), 'notes')}/_all_docs")
    return len(listing["rows"])


def _synced_dirs(device: FolderDevice) -> set[str]:
    return {d for d in device.dirs() if not d.startswith(("build", ".git"))}


def _inodes(device: FolderDevice) -> dict[str, int]:
    return {
        p.relative_to(device.folder).as_posix(): p.stat().st_ino
        for p in device.folder.rglob("*")
        if p.is_file() and p.name != MARKER  # the folder's marker is no synced file
    }


async def test_empty_folders_propagate_and_go(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    a, b = devices
    marker = "okapi-marker-51c2"
    a.write(".couchgateignore", "build/\n")
    for made in (f"Projects/{marker}", "Archive/2025/q1", "build/out", ".git/objects"):
        (a.folder / made).mkdir(parents=True)
    await settle(a, b, rounds=1)
    assert b.dirs() == {
        "Projects",
        f"Projects/{marker}",
        "Archive",
        "Archive/2025",
        "Archive/2025/q1",
    }
    _, everything = await sealed_gateway.peek(
        "GET", f"/{db_name(joined_user(a), 'notes')}/_all_docs?include_docs=true"
    )
    assert marker not in json.dumps(everything)
    assert len(everything["rows"]) == 3  # the ignore file and the two empty leaves

    # A folder that gains a file keeps its document; a removed one loses it, and a folder
    # that becomes empty gets one.
    a.write(f"Projects/{marker}/plan.md", "plan\n")
    (a.folder / "Archive/2025/q1").rmdir()
    await settle(a, b, rounds=1)
    assert b.files()[f"Projects/{marker}/plan.md"] == b"plan\n"
    assert b.dirs() == {"Projects", f"Projects/{marker}", "Archive", "Archive/2025"}
    # The ignore file, plan.md, Projects/<marker> and Archive/2025.
    assert await _live_docs(sealed_gateway, a) == 4

    # Deleting a folder's last file on B keeps the folder (it stays, empty) on A.
    (b.folder / f"Projects/{marker}/plan.md").unlink()
    await settle(b, a, rounds=1)
    assert (
        _synced_dirs(a) == b.dirs() == {"Projects", f"Projects/{marker}", "Archive", "Archive/2025"}
    )

    # Removing folders on B removes them on A.
    (b.folder / f"Projects/{marker}").rmdir()
    (b.folder / "Projects").rmdir()
    (b.folder / "Archive/2025").rmdir()
    await settle(b, a, rounds=1)
    assert b.dirs() == {"Archive"}  # now empty itself: it has a document of its own
    assert a.dirs() == {"Archive", "build", "build/out", ".git", ".git/objects"}


async def test_a_rename_is_a_move_and_history_follows_it(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    a, b = devices
    a.write("essay.md", "draft one\n")
    await a.sync()
    a.write("essay.md", "draft two\n")  # "draft one" becomes a kept version
    await settle(a, b, rounds=1)
    inode = _inodes(b)["essay.md"]
    before = await _live_docs(sealed_gateway, a)

    (a.folder / "Drafts").mkdir()
    (a.folder / "essay.md").rename(a.folder / "Drafts/essay.md")
    await settle(a, b, rounds=1)
    assert a.files() == b.files() == {"Drafts/essay.md": b"draft two\n"}
    assert _inodes(b)["Drafts/essay.md"] == inode  # renamed there too, not written anew
    assert await _live_docs(sealed_gateway, a) == before  # no version kept of a rename

    for device in (a, b):
        _, listing, _ = await device.cli("history", "Drafts/essay.md", "--dir", str(device.folder))
        lines = listing.splitlines()[1:]
        assert [line.split()[0] for line in lines] == ["1", "2"], listing
        assert "(current)" in lines[1]
        _, deleted, _ = await device.cli("history", "--deleted", "--dir", str(device.folder))
        assert "essay.md  (deleted" not in deleted
        assert deleted.startswith("essay.md  (moved to Drafts/essay.md)"), deleted

    await b.cli("restore", "Drafts/essay.md", "1", "--dir", str(b.folder))
    assert b.files() == {"Drafts/essay.md": b"draft one\n"}  # at the new path
    await settle(b, a, rounds=1)
    assert a.files() == {"Drafts/essay.md": b"draft one\n"}


async def test_a_merge_after_a_rename_keeps_the_history_for_a_device_that_joins_later(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice], tmp_path: Path
) -> None:
    a, b = devices
    a.write("essay.md", "title\n\nbody\n\nend\n")
    await settle(a, b, rounds=1)
    a.write("essay.md", "title\n\nbody, longer\n\nend\n")  # the first text: a kept version
    await settle(a, b, rounds=1)
    (a.folder / "essay.md").rename(a.folder / "moved.md")
    await settle(a, b, rounds=1)
    # Both edit the renamed file apart, on different lines: the resolver merges them.
    a.write("moved.md", "title, new\n\nbody, longer\n\nend\n")
    b.write("moved.md", "title\n\nbody, longer\n\nend, new\n")
    await a.sync()
    await settle(b, a)
    merged = b"title, new\n\nbody, longer\n\nend, new\n"
    assert a.files() == b.files() == {"moved.md": merged}

    # A device that joins only now knows the rename from the documents alone.
    c = FolderDevice(tmp_path / "home-c", tmp_path / "Notes C", "tablet", sealed_gateway.url)
    await c.join("--pair", await a.pairing_link())
    await c.sync()
    assert c.files() == {"moved.md": merged}
    _, listing, _ = await c.cli("history", "moved.md", "--dir", str(c.folder))
    texts = listing.splitlines()[1:]
    assert len(texts) >= 3, listing  # from before the rename, the merge's sides, the merge
    _, deleted, _ = await c.cli("history", "--deleted", "--dir", str(c.folder))
    assert deleted.startswith("essay.md  (moved to moved.md)"), deleted


async def test_a_directory_rename_moves_every_file_and_no_chunk(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    a, b = devices
    for n in range(30):
        a.write(f"Trip/day {n}.md", f"# Day {n}\n")
    raw = os.urandom(9 * 1024 * 1024)
    a.write("Trip/photos/raw.bin", raw)  # chunked, where its content says
    (a.folder / "Trip/empty").mkdir()
    await settle(a, b, rounds=1)
    inodes, own = _inodes(b), _inodes(a)
    before = await _live_docs(sealed_gateway, a)
    pieces = {cut.id for cut in chunks.cuts(raw, keyring_of(a))}
    assert before == 30 + 1 + len(pieces) + 1

    (a.folder / "Trip").rename(a.folder / "Travel")
    await settle(a, b, rounds=1)
    assert b.files() == a.files()
    assert {p.replace("Travel/", "Trip/", 1): i for p, i in _inodes(a).items()} == own
    assert sorted(b.files()) == sorted(p.replace("Trip/", "Travel/", 1) for p in inodes)
    assert "Travel/empty" in b.dirs() and "Trip" not in b.dirs()
    assert {p.replace("Travel/", "Trip/", 1): i for p, i in _inodes(b).items()} == inodes
    # The same number of documents: each file's new one, the same chunks, no kept version.
    assert await _live_docs(sealed_gateway, a) == before

    # Both devices go on from the moved files' new revisions: edits are edits, not conflicts.
    for n in range(0, 30, 3):
        a.write(f"Travel/day {n}.md", f"# Day {n}, edited on the laptop\n")
    b.write("Travel/day 7.md", "# Day 7, edited on the phone\n")
    await settle(a, b, rounds=2)
    assert b.files() == a.files()
    assert len(a.files()) == 31
    assert a.files()["Travel/day 7.md"] == b"# Day 7, edited on the phone\n"
    assert b.files()["Travel/day 3.md"] == b"# Day 3, edited on the laptop\n"


@pytest.mark.parametrize(
    ("editor_first", "renamed_side"),
    [
        pytest.param(False, "", id="renamed-then-edited-at-the-old-path"),
        pytest.param(True, "", id="edited-at-the-old-path-then-renamed"),
        pytest.param(False, "one\ntwo\nthree\nFOUR renamed\n", id="both-edit-other-lines"),
        pytest.param(False, "ONE renamed\ntwo\nthree\nfour\n", id="both-edit-one-line"),
    ],
)
async def test_a_rename_meets_an_offline_edit_of_the_old_path(
    devices: tuple[FolderDevice, FolderDevice], editor_first: bool, renamed_side: str
) -> None:
    """A renames plan.md while B, apart, edits plan.md: the edit ends up in the renamed file
    (merged with an edit made there) or beside it as a conflict copy, identical on both."""
    a, b = devices
    a.write("plan.md", "one\ntwo\nthree\nfour\n")
    await settle(a, b, rounds=1)
    b.write("plan.md", "ONE edited offline\ntwo\nthree\nfour\n")
    if editor_first:
        await b.sync()
    (a.folder / "plan.md").rename(a.folder / "moved.md")
    await a.sync()
    if renamed_side:
        a.write("moved.md", renamed_side)
        await a.sync()
    await settle(b, a, rounds=2)
    files = a.files()
    assert files == b.files()
    assert "plan.md" not in files
    if renamed_side.startswith("ONE"):  # the same line on both sides: a conflict copy
        assert files["moved.md"] == renamed_side.encode()
        (copy,) = [p for p in files if p != "moved.md"]
        assert re.fullmatch(r"moved \(conflict from phone \d{4}-\d\d-\d\d \d{4}\)\.md", copy)
        assert files[copy] == b"ONE edited offline\ntwo\nthree\nfour\n"
    else:
        last = renamed_side.splitlines()[-1] if renamed_side else "four"
        assert files == {"moved.md": f"ONE edited offline\ntwo\nthree\n{last}\n".encode()}


@pytest.mark.parametrize("file_first", [True, False], ids=["file-first", "folder-first"])
@pytest.mark.parametrize("inside", ["first.md", ""], ids=["with-a-note", "empty"])
async def test_a_file_and_a_folder_of_one_name_both_survive(
    devices: tuple[FolderDevice, FolderDevice], file_first: bool, inside: str
) -> None:
    """Apart, A saves a note called ``Ideas`` and B makes a folder ``Ideas`` (with a note in it,
    or empty). One folder cannot hold both: the file moves aside to a conflict-style name on
    every device and the folder stays; whichever syncs first, both end with the same files."""
    a, b = devices
    a.write("Ideas", "a note called Ideas\n")
    if inside:
        b.write(f"Ideas/{inside}", "inside the folder\n")
    else:
        (b.folder / "Ideas").mkdir()
    first, second = (a, b) if file_first else (b, a)
    await first.sync()
    await second.sync()
    await settle(a, b, rounds=2)
    files = a.files()
    assert files == b.files()
    assert a.dirs() == b.dirs() == {"Ideas"}
    if inside:
        assert files.pop(f"Ideas/{inside}") == b"inside the folder\n"
    (copy,) = files
    assert re.fullmatch(r"Ideas \(conflict from laptop \d{4}-\d\d-\d\d \d{4}\)", copy), copy
    assert files[copy] == b"a note called Ideas\n"


async def test_a_name_saved_in_nfd_keeps_its_name_and_syncs_once(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, b = devices
    nfd_dir, nfd_file = (unicodedata.normalize("NFD", n) for n in ("Résumés", "café.md"))
    (a.folder / nfd_dir).mkdir(parents=True)
    (a.folder / nfd_dir / nfd_file).write_bytes(b"au lait\n")
    await settle(a, b, rounds=1)
    nfc = unicodedata.normalize("NFC", f"{nfd_dir}/{nfd_file}")
    assert b.files() == {nfc: b"au lait\n"}
    (b.folder / nfc).write_bytes(b"noir\n")
    await settle(b, a, rounds=1)
    assert sorted(os.listdir(a.folder)) == [MARKER, nfd_dir]  # no NFC twin beside it
    assert os.listdir(a.folder / nfd_dir) == [nfd_file]
    assert (a.folder / nfd_dir / nfd_file).read_bytes() == b"noir\n"
    await settle(a, b, rounds=1)
    assert b.files() == {nfc: b"noir\n"}


# Decided and kept on the device alone (nothing of it reaches the server): one upstream will do.
@pytest.mark.parametrize("gateway_upstream", ["embedded"], indirect=True)
async def test_a_case_clash_on_a_case_insensitive_folder_is_a_failed_item(
    sealed_gateway: GatewayHarness, tmp_path: Path
) -> None:
    """B's folder is taken as case-insensitive (``COUCHGATE_SYNC_CASE_INSENSITIVE=1``: a folder
    that keeps case, as APFS and NTFS on Windows do; the real case-insensitive folder of
    test_real_file_systems lists names in lower case, and skips where FUSE is missing). A file
    clash and a folder clash (``notes/b.md`` beside ``Notes/a.md``); the decision in test_pure."""
    a = FolderDevice(tmp_path / "home-a", tmp_path / "Notes A", "laptop", sealed_gateway.url)
    b = FolderDevice(
        tmp_path / "home-b",
        tmp_path / "Notes B",
        "mac",
        sealed_gateway.url,
        extra_env={"COUCHGATE_SYNC_CASE_INSENSITIVE": "1"},
    )
    _, code = await sealed_gateway.enrollment_code()
    await a.join("--code", code)
    await b.join("--pair", await a.pairing_link())
    a.write("Readme.md", "the first\n")
    a.write("README.md", "the second\n")
    a.write("Notes/a.md", "in Notes\n")
    a.write("notes/b.md", "in notes\n")
    a.write("other.md", "other\n")
    (a.folder / "Drafts").mkdir()  # two empty folders, one name but for case
    (a.folder / "drafts").mkdir()
    await a.sync()
    err = await b.sync()  # exits 0: the rest synced
    assert err.count("skipped a document this device cannot write (another file's name") == 1
    assert err.count("cannot write (one of its folders differs from another folder") == 2
    assert "Readme" not in err and "README" not in err and "otes" not in err  # no names
    assert "rafts" not in err
    (written,) = b.files().keys() & {"Readme.md", "README.md"}
    clashing = next(p for p in ("Readme.md", "README.md") if p != written)
    (in_notes,) = b.files().keys() & {"Notes/a.md", "notes/b.md"}  # never both in one folder
    apart = next(p for p in ("Notes/a.md", "notes/b.md") if p != in_notes)
    assert b.files() == {p: a.files()[p] for p in (written, in_notes, "other.md")}
    (made,) = b.dirs() & {"Drafts", "drafts"}  # never both: on such a folder they are one
    unmade = next(p for p in ("Drafts", "drafts") if p != made)
    _, report, _ = await b.cli("status", str(b.folder))
    assert "failed:     3 document(s) this device cannot write" in report, report
    assert f"  {clashing}  (another file's name differs from it only in case" in report, report
    assert f"  {apart}  (one of its folders differs from another folder only" in report, report
    assert f"  {unmade}  (one of its folders differs from another folder only" in report, report

    # Its cause is the other file: renamed on A (or B), the clash clears and both are written.
    (a.folder / written).rename(a.folder / "old readme.md")
    (a.folder / apart).rename(a.folder / in_notes.replace(".md", " 2.md"))
    (a.folder / apart).parent.rmdir()  # else its folder, now empty, is the next clash
    (a.folder / unmade).rename(a.folder / f"{unmade} 2")
    await settle(a, b, rounds=1)
    assert b.files() == a.files() and len(a.files()) == 5  # nothing renamed on A meanwhile
    assert {made, f"{unmade} 2"} <= b.dirs()
    _, report, _ = await b.cli("status", str(b.folder))
    assert "failed:" not in report, report


async def test_run_carries_empty_folders_and_renames_live(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, b = devices
    await a.run_live()
    await b.run_live()
    a.write("inbox.md", "to sort\n")
    await until(lambda: b.files().get("inbox.md") == b"to sort\n")
    inode = _inodes(b)["inbox.md"]
    (a.folder / "Sorted").mkdir()
    await until(lambda: "Sorted" in b.dirs())
    (a.folder / "inbox.md").rename(a.folder / "Sorted/inbox.md")
    await until(lambda: b.files() == {"Sorted/inbox.md": b"to sort\n"})
    assert _inodes(b)["Sorted/inbox.md"] == inode
    (b.folder / "Sorted/inbox.md").unlink()
    # Emptied, not removed: it stays, as on the phone.
    await until(lambda: a.files() == {} and "Sorted" in a.dirs())
    (b.folder / "Sorted").rmdir()
    await until(lambda: "Sorted" not in a.dirs())
