"""A vault is never wiped by accident (issue 21, item 2): the folder marker, the mass-deletion
guard, and bulk restore (``restore DIR/``, ``rewind``), with real ``couchgate-sync`` processes
on real folders through a real couchgate."""

from __future__ import annotations

import shutil

from couchgate_sync.ignore import MARKER
from tests.sync.devices import FolderDevice, settle


async def test_an_emptied_folder_without_its_marker_deletes_nothing(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, b = devices
    assert (a.folder / MARKER).is_file() and (b.folder / MARKER).is_file()  # made at join
    for n in range(5):
        a.write(f"Notes/{n}.md", f"note {n}\n")
    await settle(a, b, rounds=1)
    kept = b.files()
    assert len(kept) == 5

    # The folder moved away and an empty one made in its place (or a drive's mount point).
    shutil.move(a.folder, a.folder.with_name("Notes A.bak"))
    a.folder.mkdir()
    code, _, err = await a.cli("sync", str(a.folder), ok=False)
    assert code == 1 and "folder marker missing: " in err, err
    assert "Traceback" not in err
    assert a.files() == {} and not (a.folder / MARKER).exists()  # nothing written here either
    await b.sync()
    assert b.files() == kept  # nothing deleted anywhere

    # Put back, it syncs again.
    shutil.rmtree(a.folder)
    shutil.move(a.folder.with_name("Notes A.bak"), a.folder)
    a.write("Notes/new.md", "after\n")
    await settle(a, b, rounds=1)
    assert b.files() == {**kept, "Notes/new.md": b"after\n"}


async def test_a_folder_joined_before_markers_gets_one_and_keeps_syncing(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, b = devices
    a.write("old.md", "from before markers\n")
    await settle(a, b, rounds=1)
    (a.folder / MARKER).unlink()  # as a folder joined by an earlier version has it
    a.write("more.md", "still syncing\n")
    await a.sync()
    assert (a.folder / MARKER).is_file()
    await b.sync()
    assert b.files() == {"old.md": b"from before markers\n", "more.md": b"still syncing\n"}
    _, listed, _ = await a.cli("status", str(a.folder))
    assert "1 local change" not in listed  # the marker is not a note
