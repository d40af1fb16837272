"""Scan: files edited, created or deleted here since their state row become local revisions.

Each new revision is a child of the revision the file was last in step with, so an edit made
while the server moved on becomes a conflict branch, never an overwrite; renamed files become
moves (``renames``), empty folders documents of their own (``folders``). The scan changes no
file in the folder.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from . import changes, chunks, deletions, folder, folders, notes, portable_names, renames
from .changes import EVERYTHING, Changed, wants_everything
from .contents import Contents, row_of
from .device import DeviceContext
from .ignore import Ignore
from .state import FileRow

log = logging.getLogger("couchgate_sync")
SCAN_BATCH = 100  # files recorded per local-store transaction
TOGETHER_BYTES = 8 * 1024 * 1024  # new files of a batch read and sealed in one thread hop


async def scan(
    context: DeviceContext,
    contents: Contents,
    guard: deletions.Guard | None = None,
    names: folder.Names = folder.SENSITIVE,
    changed: Changed = EVERYTHING,
) -> int:
    """Record what changed in the folder as local revisions; how many files changed.

    ``changed``: the paths the watcher saw change (``changes``), only those looked at and only
    their rows compared; everything (the default) walks the whole folder. A partial scan is a
    full one where it cannot be the same: the ignore file changed, or a case-insensitive folder
    (its listings and rows are matched by case across the whole folder).

    Files are recorded in batches, each batch's revisions in one transaction of the local
    store and its rows in one of the state file; a crash between the two is recognised on
    the next scan (the stored content has the file's hash) and adopted, not stored twice.
    """
    root = context.root
    folder.require(root)
    ignore = await asyncio.to_thread(Ignore.for_folder, root)
    if changed is None or names.case_insensitive or wants_everything(changed):
        listing, rows = await asyncio.to_thread(listed, context, ignore, names)
        synced = len(rows)
    else:
        listing, rows, synced = await asyncio.to_thread(listed_partly, context, ignore, changed)
    seen = listing.files
    portable_names.warn_new(path for path in seen if path not in rows)  # said once: rows stay
    changed_files = [
        s
        for path, s in seen.items()
        if (row := rows.get(path)) is None or (row.size, row.mtime_ns) != (s.size, s.mtime_ns)
    ]
    gone = [row for path, row in rows.items() if path not in seen and not ignore.matches(path)]
    moved, changed_files, gone = await renames.detect(context, contents, changed_files, gone, rows)
    gone = await deletions.screen(context, guard or deletions.Guard(), gone, synced)
    count = 0
    for start in range(0, len(moved), SCAN_BATCH):
        count += await renames.record(context, contents, moved[start : start + SCAN_BATCH])
    for start in range(0, len(changed_files), SCAN_BATCH):
        batch = changed_files[start : start + SCAN_BATCH]
        count += await _record_files(context, contents, batch, rows)
    for row in gone:
        count += await _record_deletion(context, contents, row)
    return count + await folders.record(context, listing, ignore, contents.device_name)


def listed(
    context: DeviceContext, ignore: Ignore, names: folder.Names
) -> tuple[folder.Listing, dict[str, FileRow]]:
    """In a worker thread: the folder's listing, in the names files were recorded under where
    its file system lists them in another case (:func:`folder.as_recorded`), and the rows."""
    state = context.state
    listing = folder.walk(context.root, ignore)
    rows = state.files()
    if names.case_insensitive and not names.lists_case:
        listing = folder.as_recorded(listing, rows.keys(), state.dirs().keys())
    return listing, rows


def listed_partly(
    context: DeviceContext, ignore: Ignore, changed: frozenset[str]
) -> tuple[folder.Listing, dict[str, FileRow], int]:
    """In a worker thread: the listing of the changed paths (:func:`folder.look`), the rows at
    or inside them, and how many rows there are in all (what the mass-deletion guard weighs a
    scan's deletions against).

    The paths whose deletion is held (or was just confirmed) are looked at again each time, so
    they stay held (or are recorded) as after a full scan. Synced empty folders outside the
    changed paths are listed as they are recorded: nothing said they went."""
    state = context.state
    looked = folder.look(context.root, changed | deletions.undecided(state), ignore)
    rows = state.files_under(looked.tops)
    dirs = state.dirs().keys()
    inside = changes.touched(dirs, looked.tops)
    kept = {path for path in dirs if path not in inside}
    found = looked.listing
    listing = folder.Listing(found.files, found.empty_dirs, found.dirs | kept)
    return listing, rows, state.count_files()


async def _record_files(
    context: DeviceContext,
    contents: Contents,
    batch: list[folder.Seen],
    rows: dict[str, FileRow],
) -> int:
    """Record a batch of changed files. A new file (no row, its document new or deleted: a
    first sync, a bulk restore) is read, hashed and sealed with the others of the batch in one
    worker-thread hop; any other goes through :func:`_prepare_file` alone."""
    writes: list[tuple[dict[str, Any], str | None]] = []
    pending: list[tuple[folder.Seen, str, str]] = []  # (file, doc id, sha) of each write
    adopted: list[FileRow] = []
    new = _together([s for s in batch if s.path not in rows and s.size <= chunks.CHUNKED_ABOVE])
    ids = {s.path: notes.doc_id_for(s.path, context.keyring) for s in new}
    trees = await context.local.trees(list(ids.values())) if new else {}
    new = [s for s in new if (t := trees.get(ids[s.path])) is None or t.deleted]
    parents = {s.path: t.winner if (t := trees.get(ids[s.path])) else None for s in new}
    together = {s.path for s in new}
    if new:
        sealed = await asyncio.to_thread(_seal_new, context, contents.device_name, new, ids)
        for s, found in zip(new, sealed, strict=True):
            if found is not None:
                doc, sha = found
                writes.append((doc, parents[s.path]))
                pending.append((s, ids[s.path], sha))
    for s in batch:
        if s.path in together:
            continue
        prepared = await _prepare_file(context, contents, s, rows.get(s.path))
        if isinstance(prepared, FileRow):
            adopted.append(prepared)
        elif prepared is not None:
            doc, parent, sha = prepared
            writes.append((doc, parent))
            pending.append((s, str(doc["_id"]), sha))
    revs = await context.local.write_children(writes) if writes else []
    recorded = [
        row_of(s.path, doc_id, rev, s, sha)
        for (s, doc_id, sha), rev in zip(pending, revs, strict=True)
    ]
    if adopted or recorded:
        await asyncio.to_thread(context.state.put, adopted + recorded)
    return len(recorded)


def _together(files: list[folder.Seen]) -> list[folder.Seen]:
    """The first of ``files`` that fit in ``TOGETHER_BYTES`` (held in memory at once)."""
    taken, size = [], 0
    for s in files:
        size += s.size
        if size > TOGETHER_BYTES:
            break
        taken.append(s)
    return taken


def _seal_new(
    context: DeviceContext, origin: str, new: list[folder.Seen], ids: dict[str, str]
) -> list[tuple[dict[str, Any], str] | None]:
    """In a worker thread: each new file read, hashed and sealed (None: gone meanwhile)."""
    sealed: list[tuple[dict[str, Any], str] | None] = []
    for s in new:
        data = folder.read(context.root, s.path)
        if data is None:
            sealed.append(None)
            continue
        doc = notes.seal_note(
            ids[s.path],
            s.path,
            data,
            mtime_ms=s.mtime_ns // 1_000_000,
            origin=origin,
            created=None,
            keyring=context.keyring,
        )
        sealed.append((doc, folder.digest(data)))
    return sealed


async def _prepare_file(
    context: DeviceContext, contents: Contents, s: folder.Seen, row: FileRow | None
) -> FileRow | tuple[dict[str, Any], str | None, str] | None:
    """What recording one file takes: a row to adopt as it is, or the sealed revision to
    write under its parent (with the file's hash), or None (gone, or too large)."""
    if s.size > notes.MAX_FILE_BYTES:
        log.warning(
            "skipped a file larger than %d MiB (not supported yet)", notes.MAX_FILE_BYTES >> 20
        )
        return None
    data = await asyncio.to_thread(folder.read, context.root, s.path)
    if data is None:
        return None
    sha = folder.digest(data)
    if row is not None and row.sha == sha:  # touched, not changed
        return row_of(row.path, row.doc_id, row.rev, s, sha)
    doc_id = row.doc_id if row else notes.doc_id_for(s.path, context.keyring)
    tree = await context.local.tree(doc_id)
    current = await contents.winner_note(tree)
    if tree is not None and current is not None and folder.digest(current.data) == sha:
        # Already stored (the same file on another device, or a sync cut short by a crash).
        return row_of(s.path, doc_id, tree.winner, s, sha)
    if row is not None:
        parent: str | None = row.rev
    elif tree is not None and tree.deleted:
        parent = tree.winner  # re-creating a deleted file extends its deleted leaf
    else:
        parent = None  # new, or made here while another device made it too: a branch
    sealed = await contents.seal_file(
        doc_id,
        s.path,
        data,
        mtime_ms=s.mtime_ns // 1_000_000,
        origin=contents.device_name,
        created=current.created if current else None,
        extra=renames.carried(current),
    )
    if row is not None:
        await contents.save_version(doc_id, row.rev)
    return sealed, parent, sha


async def _record_deletion(context: DeviceContext, contents: Contents, row: FileRow) -> int:
    tree = await context.local.tree(row.doc_id)
    if tree is not None and row.rev in tree.tree and not tree.tree[row.rev].deleted:
        await contents.save_version(row.doc_id, row.rev)
        await context.local.write_child({"_id": row.doc_id, "_deleted": True}, row.rev)
    await asyncio.to_thread(context.state.drop, [row.path])
    return 1
