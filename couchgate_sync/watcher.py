"""Watching the synced folder: one wake-up per burst of changes, and none while nothing changes.

On Linux the folder is watched through inotify (``asyncinotify``): its descriptor waits in the
event loop, so an idle ``run`` wakes for nothing (``watchfiles``' Rust loop wakes every 50 ms
to look at its channel, about 60 thread wake-ups a second with the hand-offs of the GIL). The
same watch says when the folder itself goes (moved away, deleted, its drive unmounted), so
nothing polls for that either. Elsewhere, or with ``COUCHGATE_SYNC_WATCHER=watchfiles``,
``watchfiles`` watches and the folder's identity is checked once a second.

Each burst says which paths changed (``changes``): the next cycle's scan looks at those only.
A change missed while a new directory's watch is being added costs nothing: the directory's own
event is reported, and the scan walks all of that directory. When the watch cannot say what
changed (the kernel's event queue overflowed, a directory could not be watched) the burst is
``EVERYTHING``, and the whole folder is scanned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import sys
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any

from .changes import EVERYTHING, NOTHING, Changed, merge

log = logging.getLogger("couchgate_sync")

QUIET_S = 0.05  # a burst ends once nothing has changed for this long...
LONGEST_S = 0.15  # ...or this long after it began (a save is often several events)
CHECK_S = 1.0  # how often the watchfiles watch checks the folder is still the one it watches

Identity = tuple[int, int]
Wanted = Callable[[str], bool]  # a changed entry's name -> whether it counts


def identity(root: Path) -> Identity | None:
    """The folder's (device, inode); None when it is not a directory (gone)."""
    try:
        st = os.stat(root)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


def backend() -> str:
    """``inotify`` where the kernel has it, else ``watchfiles`` (or as the setting says)."""
    chosen = os.environ.get("COUCHGATE_SYNC_WATCHER", "")
    if chosen in ("inotify", "watchfiles"):
        return chosen
    return "inotify" if sys.platform == "linux" else "watchfiles"


def bursts(root: Path, ident: Identity, wanted: Wanted) -> AsyncGenerator[Changed, None]:
    """Yields, once per burst of changes under ``root``, the paths that changed (relative to
    ``root``, ``/``-separated, as the OS names them; directories too), or ``EVERYTHING`` when
    it cannot say; first ``NOTHING`` once the watch is in place (a change from then on is
    reported). Ends when ``root`` is no longer the directory ``ident`` names (moved, deleted,
    unmounted). Close it (``aclosing``) when done."""
    if backend() == "inotify":
        return _inotify(root, wanted)
    return _watchfiles(root, ident, wanted)


async def _inotify(root: Path, wanted: Wanted) -> AsyncGenerator[Changed, None]:
    from asyncinotify import Inotify, Mask

    changes = (
        Mask.CREATE
        | Mask.DELETE
        | Mask.MODIFY
        | Mask.CLOSE_WRITE
        | Mask.ATTRIB
        | Mask.MOVED_FROM
        | Mask.MOVED_TO
        | Mask.DELETE_SELF
        | Mask.MOVE_SELF
        | Mask.ONLYDIR
        | Mask.DONT_FOLLOW
    )
    gone = Mask.DELETE_SELF | Mask.MOVE_SELF | Mask.UNMOUNT | Mask.IGNORED
    arrived = Mask.CREATE | Mask.MOVED_TO
    with Inotify() as inotify:
        # Off the loop: a large folder's directories are listed once here.
        blind = not await asyncio.to_thread(_watch_tree, inotify, root, changes)
        yield NOTHING  # watching
        loop = asyncio.get_running_loop()
        burst_ends: float | None = None  # when the current burst is over at the latest
        burst: Changed = NOTHING
        moving = False  # a rename's first half came: its second is waited for (see below)
        # One read at a time, never cancelled while it waits: a read cut short would lose the
        # events it took.
        reading: asyncio.Future[Any] | None = None
        try:
            while True:
                if reading is None:
                    reading = asyncio.ensure_future(inotify.get())
                timeout = None
                if burst_ends is not None:
                    # A rename inside the folder is two events back to back (MOVED_FROM, then
                    # MOVED_TO): the burst does not end between them, so the scan that sees
                    # the old path gone sees the new one too, and records a move.
                    ends = burst_ends + (QUIET_S if moving else 0.0)
                    timeout = max(0.0, min(QUIET_S, ends - loop.time()))
                if not (await asyncio.wait({reading}, timeout=timeout))[0]:
                    burst_ends, moving = None, False  # quiet for long enough, or long enough
                    yield EVERYTHING if blind else burst
                    burst = NOTHING
                    continue
                event, reading = reading.result(), None
                path = event.path
                if event.watch is not None and path == root and event.name is None:
                    if event.mask & gone:  # the folder itself went
                        if burst_ends is not None:
                            yield EVERYTHING if blind else burst
                        return
                    continue
                if Mask.ISDIR in event.mask and path is not None:
                    if event.mask & arrived:
                        watched = await asyncio.to_thread(_watch_tree, inotify, path, changes)
                        blind = blind or not watched
                    elif Mask.MOVED_FROM in event.mask:
                        _unwatch_tree(inotify, path)
                if Mask.Q_OVERFLOW in event.mask:  # events were lost: which, nobody knows
                    burst = EVERYTHING
                    # Directories made meanwhile were never watched: every one is, now.
                    watched = await asyncio.to_thread(_watch_tree, inotify, root, changes)
                    blind = blind or not watched
                elif event.name is not None and path is not None and wanted(event.name.name):
                    burst = merge(burst, frozenset({_relative(root, path)}))
                    moving = Mask.MOVED_FROM in event.mask
                else:
                    continue
                if burst_ends is None:
                    burst_ends = loop.time() + LONGEST_S
        finally:
            if reading is not None:
                reading.cancel()


def _relative(root: Path, path: Path) -> str:
    """``path`` relative to the folder; "" (everything) when it is not under it as named."""
    for top in (root, root.resolve()):  # FSEvents names /var/... as /private/var/...
        with contextlib.suppress(ValueError):
            return path.relative_to(top).as_posix()
    return ""


def _watch_tree(inotify: Any, top: Path, mask: Any) -> bool:
    """Watch ``top`` and every directory under it, not through links; whether each could be
    (no: out of inotify watches, or not allowed). Each directory is watched before it is
    listed, so one made meanwhile is either listed or reported."""
    stack = [top]
    complete = True
    while stack:
        directory = stack.pop()
        try:
            inotify.add_watch(directory, mask)
            with os.scandir(directory) as entries:
                stack += [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError):  # gone already: its parent reported it
            continue
        except OSError as exc:
            if complete:  # changes there are not reported: every change scans all
                log.warning(
                    "a directory of the folder cannot be watched (%s): each change rescans "
                    "the whole folder",
                    exc.strerror or type(exc).__name__,
                )
            complete = False
    return complete


def _unwatch_tree(inotify: Any, top: Path) -> None:
    """Stop watching a directory moved out (its watches would report from elsewhere)."""
    for watch in inotify.watches:
        if watch.path == top or top in watch.path.parents:
            with contextlib.suppress(OSError):
                inotify.rm_watch(watch)


async def _watchfiles(root: Path, ident: Identity, wanted: Wanted) -> AsyncGenerator[Changed, None]:
    import watchfiles

    moved = asyncio.Event()
    check = asyncio.create_task(_until_moved(root, ident, moved))
    try:
        yield NOTHING  # watching, as far as can be known: watchfiles says nothing of it
        async for found in watchfiles.awatch(
            root,
            watch_filter=lambda _change, path: wanted(Path(path).name),
            debounce=int(LONGEST_S * 1000),
            step=int(QUIET_S * 1000),
            stop_event=moved,
            recursive=True,
        ):
            burst: Changed = NOTHING
            for _change, path in found:
                burst = merge(burst, frozenset({_relative(root, Path(path))}))
            yield burst
    finally:
        check.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await check


async def _until_moved(root: Path, ident: Identity, moved: asyncio.Event) -> None:
    while True:
        await asyncio.sleep(CHECK_S)
        if await asyncio.to_thread(identity, root) != ident:
            break
    moved.set()
