"""The smaller promises of couchgate-sync, each on real ``couchgate-sync`` processes and real
folders through a real couchgate: what is ignored, where paths are read from, how a pipe closed
early and a failed join end, which folder a command finds, who may read the client's files, the
key shown again, and that the client's own files never become notes.

The client's side is what these test, so the embedded store stands for every upstream.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from tests.sync.devices import FolderDevice

pytestmark = pytest.mark.parametrize("gateway_upstream", ["embedded"], indirect=True)


async def test_emacs_autosave_files_stay_on_their_device(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, b = devices
    a.write("plan.md", "plan\n")
    a.write("#plan.md#", "autosave\n")
    a.write("deep/#notes.md#", "autosave\n")
    a.write("deep/a#b.md", "a real note with a hash in its name\n")
    await a.sync()
    await b.sync()
    assert b.files() == {
        "plan.md": b"plan\n",
        "deep/a#b.md": b"a real note with a hash in its name\n",
    }


async def test_share_reads_its_path_in_the_folder_as_history_and_restore_do(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, _ = devices
    a.write("deep/plan.md", "plan\n")
    await a.sync()
    _, out, _ = await a.cli("share", "deep/plan.md", "--dir", str(a.folder))
    assert "/s/" in out and "#" in out
    _, out, _ = await a.cli("history", "deep/plan.md", "--dir", str(a.folder))
    assert "(current)" in out


async def test_a_reader_that_stops_early_ends_the_listing_quietly(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    """``history --deleted | head``: the reader is gone before the listing is written."""
    a, _ = devices
    a.write("gone.md", "soon gone\n")
    await a.sync()
    (a.folder / "gone.md").unlink()
    await a.sync()
    read_end, write_end = os.pipe()
    os.close(read_end)  # a reader that has already stopped: every write meets a closed pipe
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "couchgate_sync",
            "history",
            "--deleted",
            "--dir",
            str(a.folder),
            env=a.env,
            stdout=write_end,
            stderr=asyncio.subprocess.PIPE,
        )
    finally:
        os.close(write_end)
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    assert err.decode() == ""
    assert proc.returncode == 128 + signal.SIGPIPE  # as a shell reports git's death by SIGPIPE
