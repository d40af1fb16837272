"""One sync cycle of a folder: folder -> local store -> server -> local store -> folder.

1. ``scan``: what changed in the folder becomes local revisions (``scan``).
2. ``push`` and ``pull``: the replication protocol (``replicate``).
3. ``apply``: what changed in the local store lands in the folder (``apply``), conflicts
   resolved first; kept versions past their term are pruned, unused chunks collected
   (``chunk_gc``).
4. ``push`` again when resolving or pruning wrote revisions, so the other devices see the same
   outcome.

This module orchestrates; the helpers it calls receive the device context (``device``) and
never import this module back.
"""

from __future__ import annotations

import asyncio
import fcntl
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from encryption_plugin import Keyring

from . import chunk_gc, deletions, failures, folder, marker, private, versions
from .apply import Applier, Pass
from .contents import Contents
from .counts import Counts
from .device import DeviceContext
from .ignore import Ignore
from .localdb import LocalDb
from .remote import Remote
from .replicate import Checkpoints, pull, push, replication_id
from .scan import scan
from .state import Meta, State

Progress = Callable[[str, int], None]  # ("up" | "down" | "written", how many)


class FolderBusy(Exception):
    def __init__(self, why: str = "another couchgate-sync is already syncing this folder") -> None:
        super().__init__(why)


class FolderSync:
    """A synced folder with its local store and state; ``open()`` before use, ``close()``
    after. ``device_name`` is this device's name, as its notes and versions record it."""

    def __init__(
        self,
        root: Path,
        state_dir: Path,
        keyring: Keyring,
        device_name: str,
        keep_days: int = versions.DEFAULT_KEEP_DAYS,
        guard: deletions.Guard | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.guard = guard or deletions.Guard()  # when a scan's deletions are held
        self.context = DeviceContext(
            root,
            LocalDb(state_dir / "store.sqlite3"),
            State(state_dir / "state.sqlite3"),
            keyring,
        )
        self.contents = Contents(self.context, device_name, keep_days)
        self._applier = Applier(self.context, self.contents)
        self._lock_file: IO[bytes] | None = None
        self.checkpoints: Checkpoints = {}  # replication checkpoints, read once per process
        self.progress: Progress | None = None
        self.lock = asyncio.Lock()
        self.waiting = 0  # documents the server refused at the last push (see failures)
        self.names: folder.Names | None = None  # the folder's names, probed once it is there

    async def open(self, *, exclusive: bool = True) -> None:
        """Open the local store; ``exclusive``: also take the folder's lock, so two processes
        (a ``run`` and a ``sync``) never sync one folder at once."""
        if exclusive:
            self._lock_file = await asyncio.to_thread(_take_lock, self.state_dir / "lock")
        await self.context.local.open()

    @property
    def locked(self) -> bool:
        """Whether this process holds the folder's lock (may run a cycle)."""
        return self._lock_file is not None

    async def close(self) -> None:
        await self.context.local.close()
        self.context.state.close()
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the lock

    async def cycle(
        self, remote: Remote | None, *, upload: bool = True, download: bool = True
    ) -> Counts:
        """One full sync; offline (``remote`` None) it only records and applies local state.

        ``run`` skips the half it has no reason for: a change in the folder needs no pull (the
        server's feed says when there is something to pull), a change on the server no scan.
        A revoked device learns it at its first request, before anything reaches the folder.
        """
        context, local, state = self.context, self.context.local, self.context.state
        async with self.lock:
            await marker.check(context)  # an emptied or replaced folder changes nothing
            if self.names is None:
                self.names = await asyncio.to_thread(folder.probe_names, context.root)
            names = self.names or folder.SENSITIVE
            counts = Counts()
            refused: dict[str, str] = {}  # doc id -> why the server refused it (its quota)
            upload = upload or self.waiting > 0  # what waits is sent again at every cycle
            in_step = False
            if upload:
                # Recorded first, so edits made offline are local revisions (and kept versions)
                # even while the server is away; the scan changes no file.
                counts.local_changes = await scan(context, self.contents, self.guard, names)
            if remote is not None:
                me = await local.uuid()
                push_id = replication_id(me, remote.db_url, "push")
                pull_id = replication_id(me, remote.db_url, "pull")
                if upload:
                    counts.uploaded += await push(
                        local, remote, push_id, self._tell("up"), self.checkpoints, refused
                    )
                if download or not self.checkpoints:
                    pulled, seq = await pull(
                        local, remote, pull_id, self._tell("down"), self.checkpoints
                    )
                    counts.downloaded += pulled
                    await asyncio.to_thread(state.set_meta, Meta.REMOTE_SEQ, str(seq))
                    in_step = True
            await asyncio.to_thread(folder.require, context.root)  # gone while pulling?
            ignore = await asyncio.to_thread(Ignore.for_folder, context.root)
            await self._applier.apply(Pass(ignore, remote, counts, self._tell("written"), names))
            pruned = await self.contents.prune_versions()
            pending = self._applier.pending()
            pruned += await chunk_gc.heal(context, pending) if pending else 0
            if in_step:  # chunks are collected only on a view just brought up to date
                pruned += await chunk_gc.collect(context)
            if remote is not None and (counts.resolved or pruned):
                counts.uploaded += await push(
                    local, remote, push_id, self._tell("up"), self.checkpoints, refused
                )
            if remote is not None and (upload or refused):
                self.waiting = await asyncio.to_thread(failures.record_waiting, state, refused)
                counts.waiting = self.waiting
            if remote is not None:
                await asyncio.to_thread(state.set_meta, Meta.LAST_SYNC, str(int(time.time())))
            return counts

    def _tell(self, what: str) -> Callable[[int], None] | None:
        progress = self.progress
        if progress is None:
            return None
        return lambda n: progress(what, n)


def _take_lock(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "ab", opener=private.opener)  # noqa: SIM115 (held while the sync is)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FolderBusy() from None
    return handle
