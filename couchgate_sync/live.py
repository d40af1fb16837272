"""``couchgate-sync run``: watch the folder and the server, sync on every change.

The folder is watched with ``watchfiles`` (the OS's notification API, no polling); the server's
``_changes`` feed is followed as a longpoll with heartbeats. Either wakes one sync cycle; a
change during a cycle wakes the next, so nothing is missed and cycles never overlap. Offline,
the folder is still recorded locally and the cycle is retried with a capped back-off. A revoked
device stops at once, having changed nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import watchfiles

from .ignore import TEMP_PREFIX
from .remote import Remote, RemoteError, Revoked, Unreachable
from .sync import Counts, FolderDevice

log = logging.getLogger("couchgate_sync")

LONGPOLL_MS = 25_000
MAX_BACKOFF_S = 30.0


def describe(counts: Counts) -> str:
    parts = [
        f"{counts.local_changes} local change(s)" if counts.local_changes else "",
        f"{counts.uploaded} uploaded" if counts.uploaded else "",
        f"{counts.downloaded} downloaded" if counts.downloaded else "",
        f"{counts.written} file(s) written" if counts.written else "",
        f"{counts.removed} file(s) removed" if counts.removed else "",
        f"{counts.resolved} conflict revision(s)" if counts.resolved else "",
    ]
    return ", ".join(p for p in parts if p)


class Runner:
    def __init__(self, device: FolderDevice, remote: Remote) -> None:
        self.device = device
        self.remote = remote
        self.wake = asyncio.Event()
        self.stop = asyncio.Event()
        self.fatal: RemoteError | None = None

    async def run(self) -> None:
        self.wake.set()
        tasks = [
            asyncio.create_task(self._watch_folder()),
            asyncio.create_task(self._follow_server()),
            asyncio.create_task(self._sync_loop()),
        ]
        try:
            await self.stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.fatal is not None:
            raise self.fatal

    def _wanted(self, _change: watchfiles.Change, path: str) -> bool:
        return not Path(path).name.startswith(TEMP_PREFIX)

    async def _watch_folder(self) -> None:
        async for _ in watchfiles.awatch(
            self.device.root,
            watch_filter=self._wanted,
            debounce=150,
            step=50,
            stop_event=self.stop,
            recursive=True,
        ):
            self.wake.set()

    async def _follow_server(self) -> None:
        # From where the last pull got to (what came since wakes a cycle at once), else "now".
        since: Any = await asyncio.to_thread(self.device.state.meta, "remote_seq", "now")
        backoff = 1.0
        while not self.stop.is_set():
            try:
                feed = await self.remote.changes(
                    str(since), limit=100, feed="longpoll", timeout_ms=LONGPOLL_MS
                )
            except Revoked as exc:
                self._fail(exc)
                return
            except RemoteError:  # unreachable, or refused for now: the sync loop says why
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            backoff = 1.0
            since = feed.get("last_seq", since)
            if feed.get("results"):
                self.wake.set()

    async def _sync_loop(self) -> None:
        backoff = 1.0
        while not self.stop.is_set():
            await self.wake.wait()
            self.wake.clear()
            try:
                counts = await self.device.cycle(self.remote)
            except Revoked as exc:
                self._fail(exc)
                return
            except Unreachable as exc:
                log.warning("%s; retrying in %.0f s (changes here are kept)", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                self.wake.set()
                continue
            except RemoteError as exc:
                log.error("%s; retrying in %.0f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                self.wake.set()
                continue
            backoff = 1.0
            if counts.any():
                log.info("synced: %s", describe(counts))

    def _fail(self, exc: RemoteError) -> None:
        self.fatal = exc
        self.stop.set()
