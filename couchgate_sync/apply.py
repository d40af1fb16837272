"""Apply: documents changed in the local store since the last apply land in the folder.

A document with more than one live leaf is resolved first (``resolve``); then its winner goes
to the handler of its kind: a file is written (or renamed, forwarded, moved aside), an empty
folder made, a kept version indexed; chunks need nothing (their files put them together). A
file edited here in the meantime is never overwritten: the next scan makes its edit a branch,
and it is merged. Deleted files are removed last, after every page (see :meth:`Applier.apply`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from encryption_plugin import CryptoError, Keyring

from . import failures, folder, folders, notes, renames, versions
from .contents import Contents, row_of, unchanged_on_disk
from .counts import Counts
from .device import DeviceContext
from .ignore import Ignore
from .localdb import DocTree
from .remote import Remote
from .replicate import PULL_BATCH_BYTES
from .resolve import Resolver
from .state import FileRow, Meta, State

log = logging.getLogger("couchgate_sync")
WRITE_BATCH = 200  # files written in one durable step (each open until its fsync)
# Bodies opened together for those steps, at most about this many bytes (a pull batch's worth):
# past it, a page's documents go one by one, so large files never sit in memory all at once.
OPEN_BUDGET = PULL_BATCH_BYTES


@dataclass(frozen=True)
class Pass:
    """What one apply works with: the ignore rules, the server (for common ancestors; None
    offline), where it counts, and whom it tells of files written."""

    ignore: Ignore
    remote: Remote | None
    counts: Counts
    progress: Callable[[int], None] | None
    names: folder.Names = folder.SENSITIVE  # how the folder's file system takes names


Handler = Callable[[DocTree, notes.Note, Pass], Awaitable[None]]


class Applier:
    """Applies the local store to the folder; keeps the documents it must come back to."""

    def __init__(self, context: DeviceContext, contents: Contents) -> None:
        self._context = context
        self._contents = contents
        self._resolver = Resolver(context, contents)
        self._pending: set[str] = set()  # documents to try again (a chunk missing, blocked)
        self._written_rows: list[FileRow] = []  # files written by apply, saved per page
        self._deleted: set[str] = set()  # file deletions apply makes last (see apply)
        self._blocked: set[str] = set()  # documents a file stood in the way of (see apply)
        self._case_insensitive = False  # the folder's names (see Pass.names)
        self._failed = failures.FailedItems(context.state)
        self._retry_failed = True  # failed items are tried again at each start of run or sync
        self._name_max: int | None = None  # bytes in a name (Linux); probed at first apply
        self._kinds: dict[str, Handler] = {
            "file": self._file,
            folders.KIND: self._folder,
            versions.KIND: self._version,
        }

    def pending(self) -> set[str]:
        """The documents still to be applied (a chunk missing, or a file in the way)."""
        self._pending |= self._contents.take_missing()
        return set(self._pending)

    async def apply(self, run: Pass) -> None:
        """Land the local store's changes in the folder, page by page.

        Deleted files are removed last, after every page: the tombstone of a renamed file's
        old document may come before the new document, which renames the file rather than
        fetch it again. They are kept with the pending documents meanwhile (retried first by
        the next apply after a crash), so none is skipped.
        """
        state = self._context.state
        await self._probe(run)
        waiting = set(json.loads(await asyncio.to_thread(state.meta, Meta.PENDING, "[]")))
        waiting |= self.pending()
        if self._retry_failed:  # their cause may be gone (a longer name allowed, a fix here)
            self._retry_failed = False
            waiting |= set(await asyncio.to_thread(self._failed.load))
        self._pending = set()
        for doc_id in sorted(waiting):
            await self._apply_doc(doc_id, run)
        await self._save_written_rows()
        await self.apply_new(run)
        # Tried once more after every page: the move that makes way may have come after them.
        blocked, self._blocked = self._blocked, set()
        for doc_id in sorted(blocked):
            await self._apply_doc(doc_id, run)
        await self._save_written_rows()
        self._pending |= self._blocked
        self._blocked = set()
        deleted, self._deleted = self._deleted, set()
        for doc_id in sorted(deleted):
            run.counts.removed += await self._remove_deleted(doc_id)
        # A case clash's cause is the other file: once it is renamed or deleted, try again.
        for doc_id in await asyncio.to_thread(self._failed.clashes_cleared):
            await self._apply_doc(doc_id, run)
        await self._save_written_rows()
        pending = json.dumps(sorted(self.pending()))
        await asyncio.to_thread(state.set_meta, Meta.PENDING, pending)

    async def apply_new(self, run: Pass) -> None:
        """Land the pages changed since the last apply, and nothing else: called while a pull
        is still storing (so the folder fills as documents arrive), then by :meth:`apply`.
        Deletions and blocked documents wait for :meth:`apply`; what this leaves to do is
        saved with the pending documents, so a crash in between skips nothing."""
        context = self._context
        state = context.state
        await self._probe(run)
        since = int(await asyncio.to_thread(state.meta, Meta.APPLIED_SEQ, "0"))
        while True:
            ids, last = await context.local.changed_since(since)
            await self._apply_page(ids, run)
            await self._save_written_rows()
            # Pending first: a crash between the two writes retries a document, never skips it.
            pending = json.dumps(sorted(self.pending() | self._deleted | self._blocked))
            await asyncio.to_thread(state.set_meta, Meta.PENDING, pending)
            if last != since:
                await asyncio.to_thread(state.set_meta, Meta.APPLIED_SEQ, str(last))
            if not ids or last == since:
                break
            since = last

    async def _probe(self, run: Pass) -> None:
        """What this folder's file system allows: its names as the cycle probed them, the
        length of a name learnt once per process."""
        self._case_insensitive = run.names.case_insensitive
        if self._name_max is None:
            self._name_max = await asyncio.to_thread(_name_max, self._context.root)

    async def _apply_page(self, ids: list[str], run: Pass) -> None:
        """Apply a page of changed documents in order, the plain ones in runs together.

        A document already in step (the revision its file was written from or uploaded as,
        such as this device's own uploads, which come back through the changes feed) costs
        nothing more; a plain one (one live revision, a file or a kept version, not a move or
        a large file's, a name this device holds) is opened with the others of the page in one
        step, and written with the plain ones next to it in another (:meth:`_write_plain`);
        the rest go one by one through :meth:`_apply_doc`, which handles every case
        (conflicts, deletions, renames, chunks, a file edited here, a name refused).
        """
        context = self._context
        trees = await context.local.trees(ids)
        rows, moved = await asyncio.to_thread(_rows_and_moves, context.state, ids)
        todo: list[str] = []
        plain: list[DocTree] = []
        for doc_id in ids:
            tree = trees.get(doc_id)
            if tree is None:
                continue
            single = len(tree.live_leaves) <= 1
            row = rows.get(doc_id)
            if single and row is not None and row.rev == tree.winner:
                continue  # in step
            todo.append(doc_id)
            if single and not tree.deleted and doc_id not in moved:
                plain.append(tree)
        opened: dict[str, tuple[DocTree, notes.Note]] = {}
        if plain:
            found = await context.local.winners(plain, OPEN_BUDGET)
            opened = await asyncio.to_thread(self._open_plain, plain, found, run)
        together: list[tuple[DocTree, notes.Note]] = []
        for doc_id in todo:
            if doc_id in opened:
                together.append(opened[doc_id])
                continue
            await self._flush_plain(together, run)
            together = []
            await self._apply_doc(doc_id, run)
        await self._flush_plain(together, run)

    def _open_plain(
        self, trees: list[DocTree], found: dict[str, dict[str, Any]], run: Pass
    ) -> dict[str, tuple[DocTree, notes.Note]]:
        """In a worker thread: the documents of ``trees`` that are plain once opened (see
        :meth:`_apply_page`), by id, with their notes."""
        keyring = self._context.keyring
        opened: dict[str, tuple[DocTree, notes.Note]] = {}
        for tree in trees:
            note = _open_plain(found.get(tree.id), keyring)
            if note is None or note.chunks:
                continue
            if note.kind == versions.KIND or (
                note.kind == "file"
                and not run.ignore.matches(note.path)
                and failures.unwritable(note.path, self._name_max) is None
                and renames.move_of(tree.id, note) is None
            ):
                opened[tree.id] = (tree, note)
        return opened

    async def _flush_plain(self, plain: list[tuple[DocTree, notes.Note]], run: Pass) -> None:
        for start in range(0, len(plain), WRITE_BATCH):
            part = plain[start : start + WRITE_BATCH]
            later, written = await asyncio.to_thread(self._write_plain, part)
            run.counts.written += written
            if written and run.progress is not None:
                run.progress(written)
            for doc_id in later:
                await self._apply_doc(doc_id, run)

    def _write_plain(self, plain: list[tuple[DocTree, notes.Note]]) -> tuple[list[str], int]:
        """In a worker thread: write the files of ``plain`` in one durable step
        (:func:`folder.write_batch`), then record their rows and the kept versions among
        them. The ids of those that need :meth:`_apply_doc` after all (a file edited here or
        in the way, a write refused), and how many files were written."""
        context, state = self._context, self._context.state
        later: list[str] = []
        files: list[tuple[DocTree, notes.Note]] = []
        kept: list[versions.VersionRow] = []
        for tree, note in plain:
            if note.kind == versions.KIND:
                if (version := versions.row_of(tree.id, note)) is not None:
                    kept.append(version)
            elif self._free_to_write(note.path):
                files.append((tree, note))
            else:
                later.append(tree.id)
        writes = [folder.Write(note.path, note.data, note.mtime_ms) for _, note in files]
        results = folder.write_batch(context.root, writes) if writes else []
        written: list[FileRow] = []
        for (tree, note), result in zip(files, results, strict=True):
            if isinstance(result, Exception):
                later.append(tree.id)  # its error is handled there, as for any write
            else:
                sha = folder.digest(note.data)
                written.append(row_of(note.path, tree.id, tree.winner, result, sha))
        if written:
            state.put(written)  # only now: the files are durable
        for version in kept:
            state.put_version(version)
        for doc_id in [r.doc_id for r in written] + [v.id for v in kept]:
            self._failed.settled(doc_id)
        return later, len(written)

    def _free_to_write(self, path: str) -> bool:
        """Whether the file at ``path`` may be written without a second look (in a worker
        thread): inside the folder, and nothing there, or the file as the state file last saw
        it; on a case-insensitive folder, a path with a row (no twin to look for)."""
        context = self._context
        try:
            at_path = context.state.get(path)
            if at_path is None and self._case_insensitive:
                return False
            on_disk = folder.stat_of(context.root, path)  # refuses a path leaving the folder
        except (OSError, ValueError):
            return False
        if on_disk is None:
            return True
        return at_path is not None and (on_disk.size, on_disk.mtime_ns) == (
            at_path.size,
            at_path.mtime_ns,
        )

    async def _apply_doc(self, doc_id: str, run: Pass) -> None:
        """Settle a document's conflicts, then hand its winner to the handler of its kind."""
        local, state = self._context.local, self._context.state
        tree = await local.tree(doc_id)
        if tree is None:
            return
        if len(tree.live_leaves) > 1:
            await self._save_written_rows()
            run.counts.resolved += await self._resolver.resolve(tree, run.remote)
            tree = await local.tree(doc_id)
            assert tree is not None
        row = await asyncio.to_thread(state.by_doc, doc_id)
        if row is not None and row.rev == tree.winner:
            return
        if tree.deleted:
            await self._gone(doc_id, row, run.counts)
            await asyncio.to_thread(self._failed.settled, doc_id)
            return
        note = await self._contents.note_at(tree.id, tree.winner, kind=None)
        handler = self._kinds.get(note.kind) if note is not None else None
        if note is None or handler is None:
            return
        reason = failures.unwritable(note.path, self._name_max)
        if reason is None:
            try:
                await handler(tree, note, run)
            except (OSError, ValueError, failures.Unwritable) as exc:
                if (reason := failures.reason_of(exc)) is None:
                    raise
        if reason is not None:  # one document's name: never the others' problem
            await asyncio.to_thread(self._failed.skipped, tree.id, note.path, tree.winner, reason)
        else:
            await asyncio.to_thread(self._failed.settled, tree.id)

    async def _gone(self, doc_id: str, row: FileRow | None, counts: Counts) -> None:
        """A deleted document: a file's is removed last (see apply), a folder's at once."""
        await asyncio.to_thread(self._context.state.drop_version, doc_id)
        if row is not None:
            self._deleted.add(doc_id)
        elif await folders.apply_deleted(self._context, doc_id):
            counts.removed += 1

    async def _version(self, tree: DocTree, note: notes.Note, run: Pass) -> None:
        if (version := versions.row_of(tree.id, note)) is not None:
            await asyncio.to_thread(self._context.state.put_version, version)

    async def _folder(self, tree: DocTree, note: notes.Note, run: Pass) -> None:
        if self._case_insensitive:
            clash = await asyncio.to_thread(self._folder_clash, tree.id, note.path)
            if clash is not None:
                raise failures.Unwritable(clash)  # a failed item (see _apply_doc)
        run.counts.written += await folders.apply_live(
            self._context, tree.id, tree.winner, note.path, run.ignore, self._blocked
        )

    def _folder_clash(self, doc_id: str, path: str) -> str | None:
        """In a worker thread: why the empty folder ``path`` would merge with another on this
        case-insensitive folder (:func:`failures.folder_case_clash`), or None."""
        state = self._context.state
        dirs = [p for p, row in state.dirs().items() if row.doc_id != doc_id]
        parts = path.split("/")
        under = (state.by_folded_dir("/".join(parts[:d])) for d in range(1, len(parts) + 1))
        return failures.folder_case_clash(path, dirs, [r for r in under if r is not None])

    async def _file(self, tree: DocTree, note: notes.Note, run: Pass) -> None:
        """Where a file document's content goes: renamed into place, forwarded, moved aside
        when the folder cannot hold it at its path, left alone when edited here, else written."""
        context, contents, counts = self._context, self._contents, run.counts
        if run.ignore.matches(note.path):
            return
        try:
            await asyncio.to_thread(folder.target, context.root, note.path)
        except folder.UnsafePath:
            log.warning("skipped a document whose path would leave the folder")
            return
        if (forwarded := await renames.moved_away(context, contents, tree)) is not None:
            counts.resolved += forwarded
            return
        sha = folder.digest(note.data)
        if await renames.arrived(context, contents, tree.id, tree.winner, note, sha, counts):
            return
        at_path = await asyncio.to_thread(context.state.get, note.path)
        if at_path is None and self._case_insensitive:
            recorded = await asyncio.to_thread(failures.clashing, context.state, note.path)
            here = [*self._written_rows, *recorded]
            if (clash := failures.case_clash(note.path, tree.id, here)) is not None:
                raise failures.Unwritable(clash)  # a failed item (see _apply_doc)
        on_disk = await asyncio.to_thread(folder.stat_of, context.root, note.path)
        if (
            on_disk is not None
            and at_path is None
            and await asyncio.to_thread(folder.is_dir, context.root, note.path)
        ):
            # A folder of that name here, a file elsewhere: the file gives way, on every device.
            counts.resolved += await renames.move_aside(context, contents, tree, note)
            return
        if on_disk is not None and (
            at_path is None or not await unchanged_on_disk(context, at_path)
        ):
            data = await asyncio.to_thread(folder.read, context.root, note.path)
            if data is not None and folder.digest(data) == sha:
                row = row_of(note.path, tree.id, tree.winner, on_disk, sha)
                await asyncio.to_thread(context.state.put, [row])
            return  # edited here too: the next scan makes that edit a branch, then it merges
        await self._write(tree, note, sha, run)

    async def _write(self, tree: DocTree, note: notes.Note, sha: str, run: Pass) -> None:
        try:
            written = await asyncio.to_thread(
                folder.write_atomic, self._context.root, note.path, note.data, note.mtime_ms
            )
        except (FileExistsError, NotADirectoryError):
            # A file stands where one of its folders should be (a file of that name here, a
            # folder elsewhere): the device with the folder moves that file aside, and the
            # move, once here, makes way; until then the document waits.
            self._blocked.add(tree.id)
            return
        # Saved with the page (see apply): a crash before that is recognised by the hash.
        self._written_rows.append(row_of(note.path, tree.id, tree.winner, written, sha))
        run.counts.written += 1
        if run.progress is not None:
            run.progress(1)

    async def _remove_deleted(self, doc_id: str) -> int:
        """Remove the file of a deleted document, unless it was edited here (the next scan
        makes the edit a revision) or renamed meanwhile (its row is the new document's)."""
        context = self._context
        tree = await context.local.tree(doc_id)
        row = await asyncio.to_thread(context.state.by_doc, doc_id)
        if tree is None or not tree.deleted or row is None:
            return 0
        if await asyncio.to_thread(folder.stat_of, context.root, row.path) is None:
            await asyncio.to_thread(context.state.drop, [row.path])  # gone here too (or moved)
            return 0
        if not await unchanged_on_disk(context, row):
            return 0
        keep = await folders.kept(context.state)
        await asyncio.to_thread(folder.remove, context.root, row.path, keep)
        await asyncio.to_thread(context.state.drop, [row.path])
        return 1

    async def _save_written_rows(self) -> None:
        rows, self._written_rows = self._written_rows, []
        if rows:
            await asyncio.to_thread(self._context.state.put, rows)


def _rows_and_moves(state: State, ids: list[str]) -> tuple[dict[str, FileRow], set[str]]:
    return state.by_docs(ids), state.moved_from(ids)


def _open_plain(stored: dict[str, Any] | None, keyring: Keyring) -> notes.Note | None:
    """A stored revision opened as a note of any kind; None when it cannot be (not kept, or not
    with this key: :meth:`Applier._apply_doc` says so)."""
    if stored is None:
        return None
    try:
        return notes.open_note(stored, keyring, kind=None)
    except CryptoError:
        return None


def _name_max(root: os.PathLike[str]) -> int | None:
    """The longest name, in bytes, the folder's file system holds (255 on ext4), where names are
    bytes (Linux); None elsewhere (macOS and Windows count characters: the OS says so itself)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return os.pathconf(root, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255
