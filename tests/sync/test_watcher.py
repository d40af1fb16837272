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
from couchgate_sync.changes import EVERYTHING, NOTHING, Changed
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
    """A watch of ``root`` consumed in the background: its bursts (what changed in each) land
    in a queue, and ``ended`` says whether it ended (the folder went)."""

    def __init__(self, root: Path) -> None:
        ident = watcher.identity(root)
        assert ident is not None
        self.bursts: asyncio.Queue[Changed] = asyncio.Queue()
        self.ready = asyncio.Event()
        self._changes: AsyncGenerator[Changed, None] = watcher.bursts(root, ident, _counts)
        self.task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        async with contextlib.aclosing(self._changes):
            async for burst in self._changes:
                if not self.ready.is_set():
                    assert burst == NOTHING  # the first says the watch is in place
                    self.ready.set()
                    continue
                self.bursts.put_nowait(burst)

    async def burst(self) -> Changed:
        return await asyncio.wait_for(self.bursts.get(), 10)

    async def paths(self, *expected: str) -> set[str]:
        """The paths of the bursts until ``expected`` are all among them."""
        found: set[str] = set()
        while not set(expected) <= found:
            burst = await self.burst()
            assert burst is not None  # not everything: the paths
            found |= burst
        return found

    def drain(self) -> None:
        while not self.bursts.empty():
            self.bursts.get_nowait()

    async def nothing(self) -> None:
        await asyncio.sleep(NOTHING_S)
        assert self.bursts.empty()

    async def ended(self) -> None:
        await asyncio.wait_for(self.task, 10)


@contextlib.asynccontextmanager
async def watching(root: Path) -> AsyncIterator[Watch]:
    watch = Watch(root)
    await asyncio.wait_for(watch.ready.wait(), 10)
    await asyncio.sleep(0.3)  # watchfiles' watch is in place (it cannot say when)
    try:
        yield watch
    finally:
        watch.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch.task


async def test_a_burst_per_change_in_the_folder_and_in_directories_made_later(
    backend: str, tmp_path: Path
) -> None:
    """Each burst says which paths changed, relative to the folder: files, and directories
    made, moved in or deleted (whatever is inside them is the scan's to find)."""
    root = tmp_path / "Notes"
    root.mkdir()
    async with watching(root) as watch:
        (root / "a.md").write_text("a")
        assert await watch.paths("a.md") == {"a.md"}
        for n in range(20):  # one save in many events is one burst or two, not twenty
            (root / "a.md").write_text(f"a{n}")
        await watch.burst()
        await asyncio.sleep(0.3)
        assert watch.bursts.qsize() <= 1
        watch.drain()

        (root / "new" / "deeper").mkdir(parents=True)
        assert "new" in await watch.paths("new")
        await asyncio.sleep(0.3)
        watch.drain()
        (root / "new" / "deeper" / "b.md").write_text("b")  # watched once it was made
        await watch.paths("new/deeper/b.md")
        os.rename(root / "new" / "deeper" / "b.md", root / "new" / "c.md")
        # Both halves of a rename in one burst: the scan that sees one sees the other.
        burst = await watch.burst()
        assert burst is not None and {"new/deeper/b.md", "new/c.md"} <= burst
        (root / "new" / "c.md").unlink()
        await watch.paths("new/c.md")

        outside = tmp_path / "elsewhere"
        (outside / "inner").mkdir(parents=True)
        (outside / "inner" / "d.md").write_text("d")
        os.rename(outside, root / "moved-in")  # a directory moved in: reported as itself
        await watch.paths("moved-in")
        shutil.rmtree(root / "new")
        await watch.paths("new")


def _flood(root: Path) -> None:
    """More events than the kernel queues for a watch: two files in turn (it merges an event
    identical to the one before it), each write two events."""
    queued = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    for _ in range(queued // 2 + 10):
        for name in ("a.md", "b.md"):
            with (root / name).open("a") as f:
                f.write(".")
    (root / "made-meanwhile").mkdir()  # its event is lost with the others


async def test_an_overflowing_event_queue_means_everything(tmp_path: Path) -> None:
    """When the kernel drops events (its queue full while the watch was not read), the watch
    cannot say what changed: the burst is everything, and the whole folder is scanned."""
    root = tmp_path / "Notes"
    root.mkdir()
    async with watching(root) as watch:
        _flood(root)  # on the loop, blocking it: nothing reads the events meanwhile
        # The events before the overflow come first, in bursts of their paths; then one says
        # everything (a burst() that times out fails the test).
        while (burst := await watch.burst()) is not EVERYTHING:
            assert burst is not None and burst <= {"a.md", "b.md", "made-meanwhile"}
        await asyncio.sleep(0.3)
        watch.drain()
        # A directory made while events were dropped is watched all the same.
        (root / "made-meanwhile" / "x.md").write_text("x")
        await watch.paths("made-meanwhile/x.md")


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
