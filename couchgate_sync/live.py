"""``couchgate-sync run``: watch the folder and the server, sync on every change.

The folder is watched through the OS's notifications (``watcher``: an idle run wakes for
nothing); the server's ``_changes`` feed is followed as a longpoll with heartbeats. Either
wakes one sync cycle; a change during a cycle wakes the next, so nothing is missed and cycles
never overlap. The watcher says which paths changed, and a cycle's scan looks at those only
(``changes``); the whole folder is scanned at the start, when the folder comes back, when a
command beside ``run`` asks, after a failed cycle, when the watcher cannot say (``EVERYTHING``)
and every ``FULL_SCAN_S`` all the same. Offline, the folder is still recorded locally and the
cycle is retried with a capped back-off. A revoked device stops at once, having changed nothing.

Supervised: every failure of a cycle is either transient (the server unreachable or refusing
for now, the folder missing, a file or database locked, an error not foreseen) and retried with
a back-off, logged once when the state changes and once when it clears, or permanent (revoked:
the process ends with exit code 3; its credentials removed here, noticed before each cycle and
after each answer of the server's feed: exit code 1). A task that ends when it should not (the
watcher, the follower, the sync loop) ends the process with a sentence (exit code 1), never in
silence.
Its state is kept in ``runstate`` for ``status`` and for commands run beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from . import changes, credentials, folder, marker, runstate, watcher
from .counts import Counts
from .cycle import FolderSync
from .ignore import TEMP_PREFIX, own_inside
from .remote import Remote, RemoteError, Revoked, Unreachable
from .replicate import revisions_wanted
from .state import Meta

log = logging.getLogger("couchgate_sync")

LONGPOLL_MS = 25_000
MAX_BACKOFF_S = 30.0
RETRY_WAITING_S = 300.0  # files the server refused (its quota) are sent again this often
FOLDER_CHECK_S = 1.0  # how often a missing folder is looked for again
# A scan looks only at what the watcher said changed; the whole folder is scanned again this
# often all the same, in case the OS missed something (a network drive, a file changed while
# its directory's watch was being made elsewhere): Syncthing's default with its watcher on.
FULL_SCAN_S = 3600.0


class TaskEnded(Exception):
    """One of ``run``'s tasks ended on its own: the process stops, saying which."""

    def __init__(self, name: str, exc: BaseException | None) -> None:
        why = f" ({type(exc).__name__})" if exc is not None else ""
        super().__init__(f"the {name} stopped unexpectedly{why}; couchgate-sync run stops")


def reason(exc: Exception) -> str:
    """A failure in words for the log and ``status``: never a file name (an ``OSError``
    carries one) nor a note's content."""
    if isinstance(exc, RemoteError | folder.FolderMissing | marker.FolderMarkerMissing):
        return str(exc)
    if isinstance(exc, OSError):
        return f"a file could not be read or written ({exc.strerror or type(exc).__name__})"
    if isinstance(exc, sqlite3.OperationalError):
        return "the local database is busy or locked"
    return f"an unexpected error ({type(exc).__name__})"


def where(exc: BaseException | None) -> str:
    """An error's type and the lines of code it went through, for a debug log: not its
    message, which may hold a file's name or a piece of a note (a ``ValueError`` quoting
    its input)."""
    if exc is None:
        return "no error"
    frames = traceback.extract_tb(exc.__traceback__)
    steps = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames))
    return f"{type(exc).__name__} at {steps or 'an unknown place'}"


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
    acts on them (``upload`` for folder changes, ``download`` for server ones). ``run`` waits
    on all three and on ``stop``: whichever ends first ends the run."""

    def __init__(
        self,
        folder_sync: FolderSync,
        remote: Remote,
        after_upload: Callable[[], Awaitable[object]] | None = None,
        reporter: runstate.Reporter | None = None,
        signed_in: Callable[[], bool] | None = None,
    ) -> None:
        self.folder_sync = folder_sync
        self.signed_in = signed_in  # whether this device's credentials are still kept here
        self.remote = remote
        self.after_upload = after_upload  # what follows a cycle that sent changes (shares)
        self.reporter = reporter or runstate.Reporter(folder_sync.state_dir)
        self.wake = asyncio.Event()
        self.retry = asyncio.Event()  # ends a back-off early (the folder is back, or asked)
        self.stop = asyncio.Event()
        self.upload = True
        self.download = True
        # What changed in the folder since the last scan began; the first scans everything.
        self.changed: changes.Changed = changes.EVERYTHING
        self.watching = asyncio.Event()  # the first scan waits for the watch to be in place
        self._full_scan: asyncio.TimerHandle | None = None
        self.fatal: Exception | None = None
        self.error: str | None = None  # the reason of the current error state, logged once
        self._retry_waiting: asyncio.TimerHandle | None = None  # one at a time (see failures)

    async def run(self) -> None:
        self.wake.set()
        tasks = {
            asyncio.create_task(self._watch_folder()): "folder watcher",
            asyncio.create_task(self._follow_server()): "server follower",
            asyncio.create_task(self._sync_loop()): "sync loop",
        }
        stopped = asyncio.create_task(self.stop.wait())
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(runstate.ASK_SIGNAL, self.ask)
        try:
            done, _ = await asyncio.wait({stopped, *tasks}, return_when=asyncio.FIRST_COMPLETED)
            if self.fatal is None and not self.stop.is_set():
                ended = next(t for t in tasks if t in done)
                exc = ended.exception() if not ended.cancelled() else None
                log.debug("%s ended: %s", tasks[ended], where(exc))
                self.fatal = TaskEnded(tasks[ended], exc)
        finally:
            loop.remove_signal_handler(runstate.ASK_SIGNAL)
            for timer in (self._full_scan, self._retry_waiting):
                if timer is not None:
                    timer.cancel()
            for task in (stopped, *tasks):
                task.cancel()
            for task in (stopped, *tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.reporter.remove()
        if self.fatal is not None:
            raise self.fatal

    def ask(self) -> None:
        """A command beside ``run`` asks for a full cycle (``runstate.ask_for_cycle``)."""
        self.changed = changes.EVERYTHING
        self.upload = self.download = True
        self.retry.set()
        self.wake.set()

    async def _watch_folder(self) -> None:
        """Watch the folder; when it goes (moved, unmounted) or is replaced by another
        directory of the same name, wait for it and watch it again (the OS's watch follows an
        inode, not a name), waking a cycle each time so the state says so."""
        root = self.folder_sync.context.root
        back = False  # the folder went and is here again (or another directory is)
        while not self.stop.is_set():
            ident = await asyncio.to_thread(watcher.identity, root)
            if ident is None:
                self.watching.set()  # nothing to wait for: the cycle says the folder is missing
                back = True
                await asyncio.sleep(FOLDER_CHECK_S)
                continue
            own = await asyncio.to_thread(own_inside, root)
            try:
                bursts = watcher.bursts(root, ident, _counts)
                async with contextlib.aclosing(bursts):
                    ready = False
                    async for burst in bursts:
                        if not ready:  # the watch is in place (its first burst says so)
                            ready = True
                            self.watching.set()
                            if back:  # a full scan looks at the folder that came back
                                self._look_again()
                        self._changed(changes.outside(burst, own))
            except Exception as exc:  # the folder went while the watch was being made
                log.debug("watch ended: %s", type(exc).__name__)
            self.watching.set()
            if not self.stop.is_set():
                self._look_again()  # the cycle finds the folder gone: the error state
                await asyncio.sleep(FOLDER_CHECK_S)
            back = True

    def _changed(self, burst: changes.Changed) -> None:
        """Paths changed in the folder (or everything): gathered for the next cycle's scan."""
        if burst is not None and not burst:
            return
        self.changed = changes.merge(self.changed, burst)
        self.upload = True
        self.wake.set()

    def _rescan(self) -> None:
        """The next cycle scans the whole folder."""
        self.changed = changes.EVERYTHING
        self.upload = True
        self.wake.set()

    def _look_again(self) -> None:
        self._rescan()
        self.retry.set()

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
                results = [r for r in feed.get("results", []) if isinstance(r, dict)]
                news = bool(results) and await self._news(results)
            except Revoked as exc:
                self._fail(exc)
                return
            except Exception as exc:  # unreachable, refused for now: the sync loop says why
                log.debug("the server's feed: %s", reason(exc))
                await asyncio.sleep(max(backoff, getattr(exc, "retry_after", 0.0)))
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            if await self._signed_out():
                return
            backoff = 1.0
            since = feed.get("last_seq", since)
            if news:
                self.download = True
                self.wake.set()

    async def _news(self, results: list[dict[str, Any]]) -> bool:
        """Whether the feed brought revisions this device lacks (its own pushes come back
        through the feed too, and need no cycle)."""
        wanted = revisions_wanted(results)
        return bool(await self.folder_sync.context.local.revs_diff(wanted))

    async def _sync_loop(self) -> None:
        await self.watching.wait()  # a change made before the watch began would go unseen
        backoff = 1.0
        while not self.stop.is_set():
            await self.wake.wait()
            self.wake.clear()
            self.retry.clear()
            upload, download = self.upload, self.download
            self.upload = self.download = False
            # What changes from here on is the next cycle's (an edit while this one runs).
            changed = self.changed if upload else changes.NOTHING
            if upload:
                self.changed = changes.NOTHING
            if await self._signed_out():
                return
            await self.reporter.begin()
            try:
                counts = await self.folder_sync.cycle(
                    self.remote, upload=upload, download=download, changed=changed
                )
            except Revoked as exc:
                await self.reporter.end(str(exc))
                self._fail(exc)
                return
            except Exception as exc:
                wait = max(backoff, getattr(exc, "retry_after", 0.0))
                await self._failed(exc, wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.retry.wait(), wait)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                if upload:  # the failed scan may have recorded part of what it looked at
                    self.changed = changes.EVERYTHING
                self.upload = self.upload or upload
                self.download = self.download or download
                self.wake.set()
                continue
            backoff = 1.0
            if upload and changed is changes.EVERYTHING:
                self._full_scan_later()
            await self.reporter.end()
            if self.error is not None:
                log.info("syncing again: the error has cleared")
                self.error = None
            self._retry_later(counts.waiting > 0)
            if counts.any():
                log.info("synced: %s", describe(counts))
            if upload and self.after_upload is not None:
                try:
                    await self.after_upload()
                except Exception as exc:  # the next upload tries again
                    log.warning("share links not re-sealed: %s", reason(exc))

    async def _failed(self, exc: Exception, wait: float) -> None:
        """Enter (or stay in) the error state: logged when the reason changes, not at every
        retry; where an unforeseen error happened at debug level (never its message)."""
        why = reason(exc)
        await self.reporter.end(why)
        if why == self.error:
            return
        self.error = why
        if isinstance(exc, Unreachable | folder.FolderMissing):
            log.warning("%s; retrying in %.0f s (changes here are kept)", why, wait)
        else:
            log.error("%s; retrying in %.0f s", why, wait)
        if not isinstance(exc, RemoteError | OSError):
            log.debug("the error: %s", where(exc))

    def _full_scan_later(self) -> None:
        """A full scan comes again in ``FULL_SCAN_S`` (a later full scan puts it off)."""
        if self._full_scan is not None:
            self._full_scan.cancel()
        self._full_scan = asyncio.get_running_loop().call_later(FULL_SCAN_S, self._rescan)

    def _retry_later(self, waiting: bool) -> None:
        """While files wait for the server, a cycle comes again in a while (it sends them)."""
        if self._retry_waiting is not None:
            self._retry_waiting.cancel()
        loop = asyncio.get_running_loop()
        self._retry_waiting = loop.call_later(RETRY_WAITING_S, self.wake.set) if waiting else None

    async def _signed_out(self) -> bool:
        """Whether this device's credentials were removed here since ``run`` started: then it
        stops (permanent), having changed nothing more."""
        if self.signed_in is None or await asyncio.to_thread(self.signed_in):
            return False
        gone = credentials.Gone()
        await self.reporter.end(str(gone))
        self._fail(gone)
        return True

    def _fail(self, exc: Exception) -> None:
        self.fatal = exc
        self.stop.set()


def _counts(name: str) -> bool:
    """Whether a change to an entry of this name wakes a cycle: not this client's own
    temporary files (its writes into the folder)."""
    return not name.startswith(TEMP_PREFIX)
