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
import contextlib
import fcntl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, TypeVar

from encryption_plugin import Keyring

from . import chunk_gc, deletions, failures, folder, marker, private, versions
from .apply import Applier, Pass
from .changes import EVERYTHING, Changed
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
T = TypeVar("T")
FOLLOW_EVERY_S = 0.25  # how often a push follows a running scan, an apply a running pull


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
        self,
        remote: Remote | None,
        *,
        upload: bool = True,
        download: bool = True,
        changed: Changed = EVERYTHING,
    ) -> Counts:
        """One full sync; offline (``remote`` None) it only records and applies local state.

        ``run`` skips the half it has no reason for: a change in the folder needs no pull (the
        server's feed says when there is something to pull), a change on the server no scan;
        and its scan looks only at the paths its watcher saw change (``changed``).
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
            ignore = await asyncio.to_thread(Ignore.for_folder, context.root)
            run = Pass(ignore, remote, counts, self._tell("written"), names)
            if remote is None:
                if upload:  # recorded, so edits made offline are local revisions all the same
                    counts.local_changes = await scan(
                        context, self.contents, self.guard, names, changed
                    )
            else:
                me = await local.uuid()
                push_id = replication_id(me, remote.db_url, "push")
                pull_id = replication_id(me, remote.db_url, "pull")

                async def send() -> None:
                    counts.uploaded += await push(
                        local, remote, push_id, self._tell("up"), self.checkpoints, refused
                    )

                if upload:
                    # Sent while the scan records (the scan changes no file); recorded whole
                    # even when the server is away, so edits made offline are local revisions.
                    scanned = scan(context, self.contents, self.guard, names, changed)
                    counts.local_changes = await alongside(scanned, send)
                    await send()
                if download or not self.checkpoints:
                    pulling = pull(local, remote, pull_id, self._tell("down"), self.checkpoints)
                    pulled, seq = await alongside(pulling, lambda: self._applier.apply_new(run))
                    counts.downloaded += pulled
                    await asyncio.to_thread(state.set_meta, Meta.REMOTE_SEQ, str(seq))
                    in_step = True
            await asyncio.to_thread(folder.require, context.root)  # gone while pulling?
            await self._applier.apply(run)
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


async def alongside(work: Awaitable[T], follow: Callable[[], Awaitable[object]]) -> T:
    """``work``'s result, with ``follow`` run again and again while ``work`` goes: a push
    sends what a scan has recorded so far, an apply writes what a pull has stored so far, so
    the client's work and the server's overlap instead of taking turns (a first sync's scan or
    apply is about half of it). Work that ends within ``FOLLOW_EVERY_S`` runs alone, as before.

    ``work`` always ends as it would alone (a scan records everything even when the push
    beside it fails); then the first failure is raised, ``work``'s before ``follow``'s.
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            await asyncio.wait({task}, timeout=FOLLOW_EVERY_S)
            if task.done():
                break
            await follow()
    except asyncio.CancelledError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise
    except Exception:
        await task  # its own failure first; else the follower's, below
        raise
    return task.result()


def _take_lock(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "ab", opener=private.opener)  # noqa: SIM115 (held while the sync is)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FolderBusy() from None
    return handle
