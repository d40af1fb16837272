"""What changed in the folder since the last scan: a set of paths, or "everything".

``run``'s watcher reports which paths changed (``watcher``); they are gathered here between
cycles and the next scan looks at those only (``scan``): one saved note costs a few ``stat``
calls instead of one per file of the folder (100,000 notes: 100,000 per save, seconds). When
the watcher cannot say what changed (its queue overflowed, a directory it could not watch, the
folder replaced), or too many paths gathered to be worth keeping one by one, it is
``EVERYTHING`` (``None``): the whole folder is scanned, as ``sync`` always does.

Pure: paths in, paths out, no file system.
"""

from __future__ import annotations

from collections.abc import Iterable

from .ignore import IGNORE_FILE

# ``None``: everything may have changed (a full scan); else the folder-relative, ``/``-separated
# paths that changed (files or directories; a directory stands for everything under it).
Changed = frozenset[str] | None
EVERYTHING: Changed = None
NOTHING: Changed = frozenset()
# Past this many paths a full scan is about as cheap as looking at each (a save is one or two),
# and the set would otherwise grow without bound while cycles wait (the server away, a retry).
MOST_PATHS = 10_000


def merge(before: Changed, burst: Changed, most: int = MOST_PATHS) -> Changed:
    """``before`` and ``burst`` together: everything when either is, or past ``most`` paths."""
    if before is None or burst is None:
        return EVERYTHING
    both = before | burst
    return EVERYTHING if len(both) > most else both


def outside(burst: Changed, tops: Iterable[str]) -> Changed:
    """``burst`` without the paths at or inside ``tops``: the client's own directories when
    they are in the folder, never synced and written at every cycle (which would otherwise
    wake the next, for ever)."""
    tops = tuple(tops)
    if burst is None or not tops:
        return burst
    return frozenset(p for p in burst if not any(under(p, top) for top in tops))


def under(path: str, top: str) -> bool:
    """Whether ``path`` is ``top`` or inside it."""
    return path == top or path.startswith(top + "/")


def roots(paths: Iterable[str]) -> list[str]:
    """The fewest of ``paths`` that cover them all (none inside another), sorted: each is
    looked at once, a directory with everything under it."""
    kept: list[str] = []
    for path in sorted(set(paths), key=lambda p: p.split("/")):  # a directory before its inside
        if not kept or not under(path, kept[-1]):
            kept.append(path)
    return kept


def touched(recorded: Iterable[str], tops: Iterable[str]) -> set[str]:
    """The recorded paths (state rows) that changes at ``tops`` may have changed: each path at
    or under one of them."""
    wanted = set(tops)
    found = set()
    for path in recorded:
        parts = path.split("/")
        if any("/".join(parts[:depth]) in wanted for depth in range(1, len(parts) + 1)):
            found.add(path)
    return found


def wants_everything(paths: Iterable[str]) -> bool:
    """Whether these changes need a full scan whatever they are: the ignore file changed (what
    is synced changed everywhere), or a path that is not one (the folder itself)."""
    return any(p in ("", ".", IGNORE_FILE) or p.startswith("/") for p in paths)
