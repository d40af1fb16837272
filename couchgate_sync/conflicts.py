"""Conflicts never lose a word: three-way text merges and conflict copies, in one place.

Used wherever two versions of a file meet: the resolver settling a document's live leaves
(``resolve``) and an edit made at a renamed file's old path being forwarded (``renames``).
A three-way merge (``merge3``, the line-based merge of Bazaar and Breezy) against the common
ancestor succeeds when the two sides changed different lines; then both edits are kept. When they
overlap, nothing is merged: the loser's whole text goes to a conflict copy beside the file.
The copy's name is made from the losing edit (its device and time, in UTC), never from the
device doing the resolving, so every device that settles the same conflict makes the same copy.
"""

from __future__ import annotations

import posixpath
from datetime import UTC, datetime
from typing import Any

import merge3

from . import notes
from .contents import Contents
from .device import DeviceContext


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


def merged_text(base: notes.Note | None, ours: notes.Note, theirs: notes.Note) -> bytes | None:
    """The three-way merge of two texts against their common ancestor ``base``; None when
    there is no ancestor, one of the three is not text, or the edits overlap."""
    if base is None or not (base.is_text and ours.is_text and theirs.is_text):
        return None
    text = three_way(
        base.data.decode("utf-8"), ours.data.decode("utf-8"), theirs.data.decode("utf-8")
    )
    return text.encode("utf-8") if text is not None else None


async def conflict_copy(
    context: DeviceContext, contents: Contents, path: str, loser: notes.Note
) -> tuple[dict[str, Any], str | None] | None:
    """The write that keeps ``loser``'s content as a conflict copy beside the file at ``path``
    (sealed document and parent), unless that copy holds the same bytes already."""
    copy_path = conflict_name(path, loser.origin, loser.mtime_ms)
    copy_id = notes.doc_id_for(copy_path, context.keyring)
    existing = await context.local.tree(copy_id)
    current = await contents.winner_note(existing)
    if current is not None and current.data == loser.data:
        return None
    parent = existing.winner if existing is not None and existing.deleted else None
    sealed = await contents.seal_file(
        copy_id,
        copy_path,
        loser.data,
        mtime_ms=loser.mtime_ms,
        origin=loser.origin,
        created=None,
        chunk_ids=loser.chunks,
    )
    return sealed, parent
