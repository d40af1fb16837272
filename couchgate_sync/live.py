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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import watchfiles

from .counts import Counts
from .cycle import FolderSync
from .ignore import TEMP_PREFIX
from .remote import Remote, RemoteError, Revoked, Unreachable
from .replicate import revisions_wanted
from .state import Meta

log = logging.getLogger("couchgate_sync")

LONGPOLL_MS = 25_000
MAX_BACKOFF_S = 30.0
RETRY_WAITING_S = 300.0  # files the server refused (its quota) are sent again this often


def describe(counts: Counts) -> str:
    parts = [
        f"{counts.local_changes} local change(s)" if counts.local_changes else "",
        f"{counts.uploaded} uploaded" if counts.uploaded else "",
        f"{counts.downloaded} downloaded" if counts.downloaded else "",
        f"{counts.written} file(s) written" if counts.written else "",
        f"{counts.removed} file(s) removed" if counts.removed else "",
        f"{counts.moved} file(s) renamed" if counts.moved else "",
        f"{counts.resolved} conflict revision(s)" if counts.resolved else "",
        f"{counts.waiting} document(s) waiting for the server" if counts.waiting else "",
    ]
    return ", ".join(p for p in parts if p)


class Runner:
    """Three tasks: the folder watcher and the server follower raise flags, one sync loop
    acts on them (``upload`` for folder changes, ``download`` for server ones)."""

    def __init__(
        self,
        folder_sync: FolderSync,
        remote: Remote,
        after_upload: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.folder_sync = folder_sync
        self.remote = remote
        self.after_upload = after_upload  # what follows a cycle that sent changes (shares)
        self.wake = asyncio.Event()
        self.stop = asyncio.Event()
        self.upload = True
        self.download = True
        self.fatal: RemoteError | None = None
        self._retry_waiting: asyncio.TimerHandle | None = None  # one at a time (see failures)

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
            self.folder_sync.context.root,
            watch_filter=self._wanted,
            debounce=150,
            step=50,
            stop_event=self.stop,
            recursive=True,
        ):
            self.upload = True
            self.wake.set()

    async def _follow_server(self) -> None:
        # From where the last pull got to (what came since wakes a cycle at once), else "now".
        since: Any = await asyncio.to_thread(
            self.folder_sync.context.state.meta, Meta.REMOTE_SEQ, "now"
        )
        backoff = 1.0
        while not self.stop.is_set():
            try:
                feed = await self.remote.changes(
                    str(since), limit=100, feed="longpoll", timeout_ms=LONGPOLL_MS
                )
            except Revoked as exc:
                self._fail(exc)
                return
            except RemoteError as exc:  # unreachable, or refused for now: the sync loop says why
                await asyncio.sleep(max(backoff, getattr(exc, "retry_after", 0.0)))
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            backoff = 1.0
            since = feed.get("last_seq", since)
            results = [r for r in feed.get("results", []) if isinstance(r, dict)]
            if results and await self._news(results):
                self.download = True
                self.wake.set()

    async def _news(self, results: list[dict[str, Any]]) -> bool:
        """Whether the feed brought revisions this device lacks (its own pushes come back
        through the feed too, and need no cycle)."""
        wanted = revisions_wanted(results)
        return bool(await self.folder_sync.context.local.revs_diff(wanted))

    async def _sync_loop(self) -> None:
        backoff = 1.0
        while not self.stop.is_set():
            await self.wake.wait()
            self.wake.clear()
            upload, download = self.upload, self.download
            self.upload = self.download = False
            try:
                counts = await self.folder_sync.cycle(self.remote, upload=upload, download=download)
            except Revoked as exc:
                self._fail(exc)
                return
            except RemoteError as exc:
                wait = max(backoff, getattr(exc, "retry_after", 0.0))
                if isinstance(exc, Unreachable):
                    log.warning("%s; retrying in %.0f s (changes here are kept)", exc, wait)
                else:
                    log.error("%s; retrying in %.0f s", exc, wait)
                await asyncio.sleep(wait)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                self.upload = self.upload or upload
                self.download = self.download or download
                self.wake.set()
                continue
            backoff = 1.0
            self._retry_later(counts.waiting > 0)
            if counts.any():
                log.info("synced: %s", describe(counts))
            if upload and self.after_upload is not None:
                try:
                    await self.after_upload()
                except RemoteError as exc:  # the next upload tries again
                    log.warning("share links not re-sealed: %s", exc)

    def _retry_later(self, waiting: bool) -> None:
        """While files wait for the server, a cycle comes again in a while (it sends them)."""
        if self._retry_waiting is not None:
            self._retry_waiting.cancel()
        loop = asyncio.get_running_loop()
        self._retry_waiting = loop.call_later(RETRY_WAITING_S, self.wake.set) if waiting else None

    def _fail(self, exc: RemoteError) -> None:
        self.fatal = exc
        self.stop.set()
