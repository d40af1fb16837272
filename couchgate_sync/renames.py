"""Renames as moves: the file's history follows it, and other devices rename rather than fetch.

**Seen here.** A scan that finds a synced file gone and a new file with the same SHA-256 (a
directory renamed: many such pairs at once) records a move, not a deletion and a creation: the
new path's document (``id_for(new path)``, as any file's) is written with
``"moved_from": {"id", "rev", "path"}`` (the old document, the revision it moved at, the old
path) and the old document is closed with a tombstone, both in one transaction, no version kept
(the content lives on in the new document; a large file's new document lists the same chunks,
so no chunk is written again). ``moved_from`` stays on the document's later revisions, so a
device that joins later still links the two.

**Seen elsewhere.** Applying a document with ``moved_from`` whose old document this device holds
as an unchanged file of the same content is an ``os.replace`` of that file. Every move, seen
here or applied, is kept in the state file (``moves``): ``history NEWPATH`` lists the old path's
versions too, ``history --deleted`` says the old path moved.

**Edited at the old path meanwhile.** A device that edited the old path while apart from the
renaming one writes its edit as a child of the revision the file moved at; the old document
then has a live leaf again. Whichever device sees that (every device does) forwards the edit:
into the new document (its content, or a three-way merge when the renamed file was edited too)
or, when the two edits overlap, as a conflict copy beside the renamed file; then closes the old
document. The outcome depends only on the revisions, so devices doing it at once write the same
content and the resolver settles the duplicates; every device ends with the same files.
"""

from __future__ import annotations

import asyncio
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from couchlite import revtree

from . import folder, folders, notes
from .conflicts import conflict_copy, conflict_name, merged_text
from .contents import Contents, unchanged_on_disk
from .counts import Counts
from .device import DeviceContext
from .localdb import DocTree
from .state import FileRow, Move

if TYPE_CHECKING:
    from .versions import VersionRow

MOVED_FROM = "moved_from"


@dataclass(frozen=True)
class Pair:
    """A file the scan found renamed: its old row and the new file."""

    row: FileRow
    seen: folder.Seen


async def detect(
    context: DeviceContext,
    contents: Contents,
    changed: list[folder.Seen],
    gone: list[FileRow],
    rows: dict[str, FileRow],
) -> tuple[list[Pair], list[folder.Seen], list[FileRow]]:
    """The renames among ``changed`` (new paths) and ``gone``; the rest of both, unpaired.

    Only new files of a size some gone file had are read; a new file matching several gone
    ones (copies) takes the one of the same name first (a directory renamed), then any.
    """
    new = [s for s in changed if s.path not in rows]
    sizes = {row.size for row in gone}
    by_sha: dict[str, list[FileRow]] = {}
    for row in gone:
        by_sha.setdefault(row.sha, []).append(row)
    pairs: list[Pair] = []
    for s in new:
        if s.size not in sizes or s.size > notes.MAX_FILE_BYTES:
            continue
        data = await asyncio.to_thread(folder.read, context.root, s.path)
        candidates = by_sha.get(folder.digest(data)) if data is not None else None
        if not candidates:
            continue
        name = posixpath.basename(s.path)
        row = next((r for r in candidates if posixpath.basename(r.path) == name), candidates[0])
        if await contents.note_at(row.doc_id, row.rev) is None:
            continue  # its content is not here to carry over: a deletion and a creation
        candidates.remove(row)
        pairs.append(Pair(row, s))
    paired = {p.seen.path for p in pairs}
    left = {p.row.path for p in pairs}
    return (
        pairs,
        [s for s in changed if s.path not in paired],
        [r for r in gone if r.path not in left],
    )


async def record(context: DeviceContext, contents: Contents, pairs: list[Pair]) -> int:
    """Write the moves of ``pairs``: the new documents and the old ones' tombstones in one
    transaction, then the rows and moves in one commit. After a crash between the two the
    scan pairs the same files again and finds the new documents written (adopted as they are)
    and the old ones closed."""
    writes: list[tuple[dict[str, Any], str | None]] = []
    planned: list[tuple[Pair, Move, str | int]] = []  # the new rev, or its index in writes
    for p in pairs:
        new_id = notes.doc_id_for(p.seen.path, context.keyring)
        move = Move(new_id, p.seen.path, p.row.doc_id, p.row.rev, p.row.path)
        tree = await context.local.tree(new_id)
        current = await contents.winner_note(tree)
        if tree is not None and current is not None and folder.digest(current.data) == p.row.sha:
            planned.append((p, move, tree.winner))
        else:  # opened one at a time: only the sealed documents are kept
            old_note = await contents.note_at(p.row.doc_id, p.row.rev)
            data = (
                old_note.data
                if old_note is not None
                else await asyncio.to_thread(folder.read, context.root, p.seen.path)
            )
            if data is None:
                continue  # gone again: the next scan sees what is left
            sealed = await contents.seal_file(
                new_id,
                p.seen.path,
                data,
                mtime_ms=p.seen.mtime_ns // 1_000_000,
                origin=contents.device_name,
                created=old_note.created if old_note else None,
                chunk_ids=old_note.chunks if old_note else (),
                extra={MOVED_FROM: _link(move)},
            )
            planned.append((p, move, len(writes)))
            writes.append((sealed, tree.winner if tree is not None and tree.deleted else None))
        old = await context.local.tree(p.row.doc_id)
        if (
            old is not None
            and p.row.rev in old.tree
            and revtree.is_leaf(old.tree, p.row.rev)
            and not old.tree[p.row.rev].deleted
        ):
            writes.append(({"_id": p.row.doc_id, "_deleted": True}, p.row.rev))
    revs = await context.local.write_children(writes) if writes else []
    renamed = []
    for p, move, rev in planned:
        new_rev = revs[rev] if isinstance(rev, int) else rev
        s = p.seen
        renamed.append(
            (p.row.path, FileRow(s.path, move.to_doc, new_rev, s.size, s.mtime_ns, p.row.sha), move)
        )
    if renamed:
        await asyncio.to_thread(context.state.moved, renamed)
    return len(renamed)


def _link(move: Move) -> dict[str, str]:
    return {"id": move.from_doc, "rev": move.from_rev, "path": move.from_path}


def carried(note: notes.Note | None) -> dict[str, Any] | None:
    """The ``moved_from`` a new revision of ``note``'s document keeps, if it has one."""
    link = note.meta.get(MOVED_FROM) if note is not None else None
    return {MOVED_FROM: link} if isinstance(link, dict) else None


def move_of(doc_id: str, note: notes.Note) -> Move | None:
    link = note.meta.get(MOVED_FROM)
    if not isinstance(link, dict):
        return None
    ids = (link.get("id"), link.get("rev"), link.get("path"))
    if not all(isinstance(v, str) and v for v in ids):
        return None
    return Move(doc_id, note.path, str(ids[0]), str(ids[1]), notes.normalize(str(ids[2])))


async def arrived(
    context: DeviceContext,
    contents: Contents,
    doc_id: str,
    rev: str,
    note: notes.Note,
    sha: str,
    counts: Counts,
) -> bool:
    """Apply side of a document that says it moved: remember the move, rename this device's
    file of the old document when it is unchanged and the same content, forward an edit made at
    the old path; whether that was all the document needed here."""
    move = move_of(doc_id, note)
    if move is None:
        return False
    await asyncio.to_thread(context.state.put_move, move)
    old_row = await asyncio.to_thread(context.state.by_doc, move.from_doc)
    if (
        old_row is not None
        and old_row.path != note.path
        and old_row.sha == sha
        and await unchanged_on_disk(context, old_row)
        and await asyncio.to_thread(folder.free_for, context.root, note.path, old_row.path)
    ):
        keep = await folders.kept(context.state)
        seen = await asyncio.to_thread(folder.move, context.root, old_row.path, note.path, keep)
        row = FileRow(note.path, doc_id, rev, seen.size, seen.mtime_ns, sha)
        await asyncio.to_thread(context.state.moved, [(old_row.path, row, move)])
        counts.moved += 1
        return True
    old_tree = await context.local.tree(move.from_doc)
    if old_tree is not None and not old_tree.deleted and old_tree.winner != move.from_rev:
        counts.resolved += await forward(context, contents, old_tree)
        now = await context.local.tree(doc_id)
        return now is not None and now.winner != rev  # forwarded into it: the next page writes
    return False


async def moved_away(context: DeviceContext, contents: Contents, tree: DocTree) -> int | None:
    """For a live file document that moved: None when it did not (apply it as usual); else
    the revisions written to forward an edit made at the old path (0: none, its tombstone is
    on the way)."""
    for move in await asyncio.to_thread(context.state.moves_from, tree.id):
        if tree.winner == move.from_rev:
            return 0
        if _edited_after(tree, move.from_rev):
            return await forward(context, contents, tree)
    return None


def _edited_after(tree: DocTree, rev: str) -> bool:
    """Whether the winner descends from ``rev`` through live revisions only (an edit of the
    moved file, not the path made anew after the move)."""
    chain = revtree.ancestry(tree.tree, tree.winner)
    if rev not in chain:
        return False
    return not any(tree.tree[r].deleted for r in chain[: chain.index(rev)])


async def forward(context: DeviceContext, contents: Contents, old: DocTree) -> int:
    """Carry the old document's winner into the file it moved to; revisions written."""
    moves = [
        m
        for m in await asyncio.to_thread(context.state.moves_from, old.id)
        if _edited_after(old, m.from_rev)
    ]
    if not moves:
        return 0
    move = moves[0]
    theirs = await contents.note_at(old.id, old.winner)
    base = await contents.note_at(move.from_doc, move.from_rev)
    to_tree = await context.local.tree(move.to_doc)
    ours = await contents.winner_note(to_tree)
    if theirs is None or ours is None or to_tree is None:
        return 0  # the renamed file is gone (or not here yet): the edit stays where it is
    writes: list[tuple[dict[str, Any], str | None]] = []
    # Unchanged since the move: the edit is simply carried over (whatever the content).
    merged = (
        theirs.data
        if base is not None and ours.data == base.data
        else merged_text(base, ours, theirs)
    )
    if merged is not None:
        await contents.save_version(move.to_doc, to_tree.winner)
        writes.append(
            (
                await contents.seal_file(
                    move.to_doc,
                    ours.path,
                    merged,
                    mtime_ms=theirs.mtime_ms,
                    origin=theirs.origin,
                    created=ours.created,
                    chunk_ids=theirs.chunks if merged == theirs.data else (),
                    extra=carried(ours),
                ),
                to_tree.winner,
            )
        )
    elif (copy := await conflict_copy(context, contents, ours.path, theirs)) is not None:
        writes.append(copy)
    writes.append(({"_id": old.id, "_deleted": True}, old.winner))
    await context.local.write_children(writes)
    return len(writes)


async def move_aside(
    context: DeviceContext, contents: Contents, tree: DocTree, note: notes.Note
) -> int:
    """Move a file document this folder cannot hold at its path to a conflict-style name beside
    it, as a rename every device then makes: a directory standing at its path (a folder of that
    name made on one device, a file on another). The name is the file's own
    (its device and time), so two devices that both do this write the same move. Revisions
    written."""
    path = conflict_name(note.path, note.origin, note.mtime_ms)
    new_id = notes.doc_id_for(path, context.keyring)
    existing = await context.local.tree(new_id)
    move = Move(new_id, path, tree.id, tree.winner, note.path)
    sealed = await contents.seal_file(
        new_id,
        path,
        note.data,
        mtime_ms=note.mtime_ms,
        origin=note.origin,
        created=note.created,
        chunk_ids=note.chunks,
        extra={MOVED_FROM: _link(move)},
    )
    parent = existing.winner if existing is not None and existing.deleted else None
    await context.local.write_children(
        [(sealed, parent), ({"_id": tree.id, "_deleted": True}, tree.winner)]
    )
    await asyncio.to_thread(context.state.put_move, move)
    return 2


async def earlier_versions(
    context: DeviceContext, path: str, _seen: frozenset[str] = frozenset()
) -> list[VersionRow]:
    """The kept versions of the files ``path`` was renamed from (and they from), oldest
    first: those of the old document up to the revision it moved at."""
    found: list[VersionRow] = []
    for move in await asyncio.to_thread(context.state.moves_to, path):
        if move.from_path in _seen or move.from_path == path:
            continue
        found += await earlier_versions(context, move.from_path, _seen | {path})
        tree = await context.local.tree(move.from_doc)
        before = (
            set(revtree.ancestry(tree.tree, move.from_rev))
            if tree is not None and move.from_rev in tree.tree
            else None
        )
        found += [
            v
            for v in await asyncio.to_thread(context.state.versions_of, move.from_path)
            if v.of_doc == move.from_doc and (before is None or v.rev in before)
        ]
    return found


async def moved_to(context: DeviceContext, doc_id: str, path: str) -> str | None:
    """Where the file of ``doc_id`` at ``path`` was renamed to, if it was."""
    for move in await asyncio.to_thread(context.state.moves_from, doc_id):
        if move.from_path == path:
            return move.to_path
    return None
