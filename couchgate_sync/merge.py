"""Text merges and conflict-copy names: the pure part of "conflicts never lose a word".

A three-way merge (``merge3``, the line-based merge of Bazaar and Breezy) against the common
ancestor succeeds when the two sides changed different lines; then both edits are kept. When they
overlap, nothing is merged: the loser's whole text goes to a conflict copy beside the file.
The copy's name is made from the losing edit (its device and time, in UTC), never from the
device doing the resolving, so every device that settles the same conflict makes the same copy.
"""

from __future__ import annotations

import posixpath
from datetime import UTC, datetime

import merge3


def three_way(base: str, ours: str, theirs: str) -> str | None:
    """``ours`` and ``theirs`` merged against ``base``, or None when their edits overlap."""
    if ours == theirs:
        return ours
    merger = merge3.Merge3(
        base.splitlines(keepends=True),
        ours.splitlines(keepends=True),
        theirs.splitlines(keepends=True),
    )
    out: list[str] = []
    for group in merger.merge_groups():
        kind = group[0]
        if kind == "conflict":
            return None
        out.extend(group[1])  # unchanged, same, or one side's change: its lines
    return "".join(out)


def conflict_name(path: str, device: str, mtime_ms: int) -> str:
    """``dir/name (conflict from DEVICE YYYY-MM-DD HHMM).ext``."""
    folder, name = posixpath.split(path)
    stem, ext = posixpath.splitext(name)
    if not stem:  # a dot-file such as ".env": the whole name is the stem
        stem, ext = name, ""
    when = datetime.fromtimestamp(mtime_ms / 1000, UTC).strftime("%Y-%m-%d %H%M")
    safe_device = "".join(c for c in device if c not in '/\\:*?"<>|') or "another device"
    copy = f"{stem} (conflict from {safe_device} {when}){ext}"
    return posixpath.join(folder, copy) if folder else copy
