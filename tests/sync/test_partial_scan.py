"""Partial scans (``run``'s: only the paths its watcher saw change) on real folders and a real
local store, in-process and offline: each kind of change is recorded as a full scan records it,
a partial scan looks at a handful of entries where a full one stats every file, and what needs
the whole folder still gets it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from couchgate_sync import deletions
from couchgate_sync.changes import EVERYTHING
from couchgate_sync.cycle import FolderSync
from couchgate_sync.ignore import IGNORE_FILE, TEMP_PREFIX
from couchgate_sync.state import FileRow
from encryption_plugin import Keyring
from tests.sync.devices import FolderDevice
from tests.sync.test_run_supervised import WITHIN_S, embedded_only


class Device:
    """A folder synced offline (scan and apply, no server) by one ``FolderSync``."""

    def __init__(self, folder_sync: FolderSync) -> None:
        self.sync = folder_sync
        self.root = folder_sync.context.root

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    async def scan(self, *changed: str) -> int:
        """One cycle whose scan looks at ``changed`` only (none given: everything)."""
        counts = await self.sync.cycle(None, changed=frozenset(changed) if changed else EVERYTHING)
        return counts.local_changes

    def rows(self) -> dict[str, FileRow]:
        return self.sync.context.state.files()

    def dirs(self) -> set[str]:
        return set(self.sync.context.state.dirs())

    def moved_to(self, path: str) -> bool:
        return bool(self.sync.context.state.moves_to(path))

    async def live(self, path: str) -> bool:
        """Whether the document of a recorded path is live in the local store."""
        row = self.rows().get(path)
        tree = await self.sync.context.local.tree(row.doc_id) if row else None
        return tree is not None and not tree.deleted


@pytest.fixture
async def device(tmp_path: Path) -> AsyncIterator[Device]:
    root = tmp_path / "Notes"
    root.mkdir()
    folder_sync = FolderSync(root, tmp_path / "state", Keyring.generate("notes"), "laptop")
    await folder_sync.open()
    try:
        yield Device(folder_sync)
    finally:
        await folder_sync.close()


async def test_each_kind_of_change_is_found_where_it_was_made(device: Device) -> None:
    d = device
    for name in ("a.md", "b.md", "c.md", "dir/x.md", "dir/y.md", "old/p.md", "old/q.md"):
        d.write(name, f"{name}\n")
    d.write("untouched/z.md", "z\n")
    assert await d.scan() == 8

    d.write("a.md", "a, edited\n")
    assert await d.scan("a.md") == 1
    assert d.rows()["a.md"].sha != d.rows()["b.md"].sha and await d.live("a.md")

    d.write("new.md", "new\n")
    assert await d.scan("new.md") == 1 and "new.md" in d.rows()

    doc_of_b = d.rows()["b.md"].doc_id
    (d.root / "b.md").unlink()
    assert await d.scan("b.md") == 1 and "b.md" not in d.rows()
    tree = await d.sync.context.local.tree(doc_of_b)
    assert tree is not None and tree.deleted

    os.rename(d.root / "c.md", d.root / "renamed.md")  # a rename: both paths reported
    await d.scan("c.md", "renamed.md")
    assert "c.md" not in d.rows() and d.moved_to("renamed.md")

    os.rename(d.root / "old", d.root / "new-dir")  # a directory renamed: every file moves
    await d.scan("old", "new-dir")
    assert not [p for p in d.rows() if p.startswith("old/")]
    assert d.moved_to("new-dir/p.md") and d.moved_to("new-dir/q.md")

    d.write("made/deep/m.md", "m\n")  # a new directory: only it is reported
    d.write("made/n.md", "n\n")
    assert await d.scan("made") == 2
    assert {"made/deep/m.md", "made/n.md"} <= d.rows().keys()

    shutil.rmtree(d.root / "dir")  # a directory deleted with its files
    assert await d.scan("dir") == 2
    assert not [p for p in d.rows() if p.startswith("dir/")]

    d.write("note.md.swp", "editor swap\n")  # ignored by default
    assert await d.scan("note.md.swp") == 0 and "note.md.swp" not in d.rows()

    (d.root / "empty").mkdir()  # an empty folder is a document of its own
    await d.scan("empty")
    assert "empty" in d.dirs()
    (d.root / "made" / "n.md").unlink()
    shutil.rmtree(d.root / "made" / "deep")  # "made" is left empty: an empty folder now
    await d.scan("made/n.md", "made/deep")
    assert "made" in d.dirs() and not [p for p in d.rows() if p.startswith("made/")]
    (d.root / "empty").rmdir()
    await d.scan("empty")
    assert "empty" not in d.dirs()

    full = dict(d.rows())
    assert await d.scan() == 0  # a full scan finds nothing the partial ones missed
    assert d.rows() == full and "untouched/z.md" in full


async def test_a_change_under_a_directory_that_went_stands_for_the_directory(
    device: Device,
) -> None:
    """Only a file's path was reported, but its directory went: all the directory held is
    gone (as a full scan would say); under a link or an ignored directory, likewise."""
    d = device
    for name in ("gone/a.md", "gone/b.md", "gone/deeper/c.md", "kept.md"):
        d.write(name, name)
    await d.scan()
    shutil.rmtree(d.root / "gone")
    assert await d.scan("gone/deeper/c.md") == 3
    assert set(d.rows()) == {"kept.md"}


async def test_a_partial_scan_looks_at_the_change_not_the_folder(
    device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted through the real calls: a full scan of 300 files stats each of them; a partial
    one with one file changed stats a handful of entries and compares one row."""
    d = device
    for n in range(300):
        d.write(f"f{n % 3}/note{n}.md", f"note {n}\n")
    await d.scan()

    calls = {"stat": 0, "scandir": 0}

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return real(*args, **kwargs)

        return call

    for name in ("stat", "lstat"):
        monkeypatch.setattr(os, name, counting("stat", getattr(os, name)))
    monkeypatch.setattr(os, "scandir", counting("scandir", os.scandir))
    files_under = d.sync.context.state.files_under
    compared: list[int] = []

    def rows_under(tops: list[str]) -> dict[str, FileRow]:
        found = files_under(tops)
        compared.append(len(found))
        return found

    monkeypatch.setattr(d.sync.context.state, "files_under", rows_under)

    d.write("f1/note1.md", "note 1, edited\n")
    assert await d.scan("f1/note1.md") == 1
    assert compared == [1]
    # The whole cycle's: its fixed part (the folder's marker, its ignore file, the file read,
    # hashed and recorded) is about 40; a full scan's is one per file and directory more.
    assert calls["stat"] < 100 and calls["scandir"] < 5, calls

    calls.update(stat=0, scandir=0)
    assert await d.scan() == 0
    assert calls["stat"] >= 300 and calls["scandir"] >= 4, calls  # the control: a full walk


async def test_what_needs_the_whole_folder_gets_a_full_scan(
    device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit nobody reported is found by a full scan only: after an ignore file change, on a
    case-insensitive folder, and when everything changed."""
    d = device
    d.write("a.md", "a\n")
    d.write("b.md", "b\n")
    await d.scan()
    d.write("b.md", "b, edited unseen\n")
    assert await d.scan("a.md") == 0  # not reported: not looked at
    d.write(IGNORE_FILE, "*.tmp\n")
    assert await d.scan(IGNORE_FILE) == 2  # the ignore file itself, and b.md

    d.write("b.md", "b, edited unseen again\n")
    monkeypatch.setenv("COUCHGATE_SYNC_CASE_INSENSITIVE", "1")
    d.sync.names = None  # probed again at the next cycle
    assert await d.scan("a.md") == 1


async def test_held_deletions_stay_held_across_partial_scans(device: Device) -> None:
    """The mass-deletion guard weighs a partial scan's deletions against every synced file,
    and what it holds stays held while other changes are scanned, until confirmed."""
    d = device
    for n in range(30):
        d.write(f"many/{n}.md", f"{n}\n")
    for n in range(20):
        d.write(f"{n}.md", f"{n}\n")
    await d.scan()
    shutil.rmtree(d.root / "many")  # 30 of 50: more than 20 files and half the folder
    assert await d.scan("many") == 0
    assert len(await deletions.held(d.sync.context)) == 30 and len(d.rows()) == 50
    d.write("0.md", "edited\n")
    assert await d.scan("0.md") == 1
    assert len(await deletions.held(d.sync.context)) == 30  # still held, rows kept
    assert await deletions.confirm(d.sync.context) == 30
    assert await d.scan("1.md") == 30 and len(d.rows()) == 20


def files_of(device: FolderDevice) -> dict[str, bytes]:
    """The device's files, read while its ``run`` may be writing (:meth:`FolderDevice.files`),
    its temporary files left out."""
    return {
        rel: data
        for rel, data in device.files().items()
        if not rel.rpartition("/")[2].startswith(TEMP_PREFIX)
    }


async def arrives(device: FolderDevice, expected: dict[str, bytes]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN_S
    while (found := files_of(device)) != expected:
        assert loop.time() < deadline, (sorted(found), sorted(expected))
        await asyncio.sleep(0.05)


@embedded_only
async def test_run_sends_an_edit_made_while_a_cycle_ran_and_directories_moved(
    devices: tuple[FolderDevice, FolderDevice], tmp_path: Path
) -> None:
    """Real ``run`` processes: what changes while a cycle runs is the next cycle's to scan
    (not lost with the paths the running one took); a directory renamed or moved in from
    outside arrives whole, the rename as renames."""
    a, b = devices
    a.write("early.md", "v1\n")
    await a.run_live()
    await b.run_live()
    expected = {"early.md": b"v1\n"}
    await arrives(b, expected)

    before = a.run_state()
    assert before is not None
    for n in range(150):  # a cycle long enough to edit during
        a.write(f"batch/{n}.md", f"{n}\n")
        expected[f"batch/{n}.md"] = f"{n}\n".encode()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not ((now := a.run_state()) and now["started"] > before["started"]):
        assert loop.time() < deadline
        await asyncio.sleep(0.005)
    a.write("early.md", "v2, saved while a cycle ran\n")
    expected["early.md"] = b"v2, saved while a cycle ran\n"
    await arrives(b, expected)

    os.rename(a.folder / "batch", a.folder / "renamed")
    outside = tmp_path / "from elsewhere"
    (outside / "inner").mkdir(parents=True)
    (outside / "inner" / "x.md").write_text("moved in\n")
    os.rename(outside, a.folder / "arrived")
    expected = {p.replace("batch/", "renamed/"): v for p, v in expected.items()}
    expected["arrived/inner/x.md"] = b"moved in\n"
    await arrives(b, expected)
    while True:  # its log line comes at the end of the cycle that renamed them
        renamed = re.findall(r"(\d+) file\(s\) renamed", (b.home / "run.log").read_text())
        if sum(map(int, renamed)) == 150:  # renamed there too, not fetched again
            break
        assert loop.time() < deadline + WITHIN_S, renamed
        await asyncio.sleep(0.05)
