"""The folder watcher on real directories, with both of its backends (inotify, the default here,
and watchfiles, the one other systems use), and an idle ``run`` that wakes for nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import pytest

from bench.bench_folder_sync import wakeups
from couchgate_sync import watcher
from couchgate_sync.ignore import TEMP_PREFIX
from tests.sync.devices import FolderDevice

embedded_only = pytest.mark.parametrize("gateway_upstream", ["embedded"], indirect=True)
NOTHING_S = 1.0  # how long "nothing came" is waited for (watchfiles checks once a second)


def _counts(name: str) -> bool:
    return not name.startswith(TEMP_PREFIX)


@pytest.fixture(params=["inotify", "watchfiles"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COUCHGATE_SYNC_WATCHER", request.param)
    assert watcher.backend() == request.param
    return str(request.param)


class Watch:
    """A watch of ``root`` consumed in the background: its bursts land in a queue, and
    ``ended`` says whether it ended (the folder went)."""

    def __init__(self, root: Path) -> None:
        ident = watcher.identity(root)
        assert ident is not None
        self.bursts: asyncio.Queue[None] = asyncio.Queue()
        self._changes: AsyncGenerator[None, None] = watcher.bursts(root, ident, _counts)
        self.task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        async with contextlib.aclosing(self._changes):
            async for _ in self._changes:
                self.bursts.put_nowait(None)

    async def burst(self) -> None:
        await asyncio.wait_for(self.bursts.get(), 10)

    async def nothing(self) -> None:
        await asyncio.sleep(NOTHING_S)
        assert self.bursts.empty()

    async def ended(self) -> None:
        await asyncio.wait_for(self.task, 10)


@contextlib.asynccontextmanager
async def watching(root: Path) -> AsyncIterator[Watch]:
    watch = Watch(root)
    await asyncio.sleep(0.3)  # the watch is in place
    try:
        yield watch
    finally:
        watch.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch.task


async def test_a_burst_per_change_in_the_folder_and_in_directories_made_later(
    backend: str, tmp_path: Path
) -> None:
    root = tmp_path / "Notes"
    root.mkdir()
    async with watching(root) as watch:
        (root / "a.md").write_text("a")
        await watch.burst()
        for n in range(20):  # one save in many events is one burst or two, not twenty
            (root / "a.md").write_text(f"a{n}")
        await watch.burst()
        await asyncio.sleep(0.3)
        assert watch.bursts.qsize() <= 1
        while not watch.bursts.empty():
            watch.bursts.get_nowait()

        (root / "new" / "deeper").mkdir(parents=True)
        await watch.burst()
        await asyncio.sleep(0.3)
        while not watch.bursts.empty():
            watch.bursts.get_nowait()
        (root / "new" / "deeper" / "b.md").write_text("b")  # watched once it was made
        await watch.burst()
        os.rename(root / "new" / "deeper" / "b.md", root / "new" / "c.md")
        await watch.burst()
        (root / "new" / "c.md").unlink()
        await watch.burst()


async def test_the_client_s_own_temporary_files_wake_nothing(backend: str, tmp_path: Path) -> None:
    root = tmp_path / "Notes"
    root.mkdir()
    async with watching(root) as watch:
        (root / f"{TEMP_PREFIX}abc").write_bytes(b"being written")
        (root / f"{TEMP_PREFIX}abc").unlink()
        await watch.nothing()
        (root / "real.md").write_text("x")
        await watch.burst()


@pytest.mark.parametrize("how", ["moved away", "deleted", "replaced"])
async def test_the_watch_ends_when_the_folder_goes(backend: str, tmp_path: Path, how: str) -> None:
    root = tmp_path / "Notes"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.md").write_text("a")
    async with watching(root) as watch:
        if how == "deleted":
            shutil.rmtree(root)
        else:
            root.rename(tmp_path / "Notes.bak")
            if how == "replaced":  # an empty mount point, or `mv Notes Notes.bak && mkdir Notes`
                root.mkdir()
        await watch.ended()


@embedded_only
async def test_an_idle_run_wakes_for_nothing(devices: tuple[FolderDevice, FolderDevice]) -> None:
    """No thread of an idle ``run`` wakes while nothing happens: not the folder's watch (it
    waits in the event loop), not the local store (no other process writes it). The server's
    feed sends a heartbeat every 10 s: at most one in the window. And it still syncs."""
    a, b = devices
    a.write("note.md", "hello")
    await a.run_live()
    assert a.live is not None
    pid = a.live.pid
    await asyncio.sleep(4)  # the first cycle done, the watch in place

    before = wakeups(pid)
    await asyncio.sleep(5)
    woken = wakeups(pid) - before
    assert woken <= 6, f"{woken} wake-ups in 5 s of idle"  # about 300 with a polling watch
    a.write("later.md", "still watching")
    for _ in range(20):
        await asyncio.sleep(0.5)
        await b.sync()
        if "later.md" in b.files():
            break
    else:
        raise AssertionError("an edit after the idle time was not synced")
