"""One sync cycle of a folder device: folder -> local store -> server -> local store -> folder.

1. ``scan``: files edited, created or deleted here since their state row become new revisions in
   the local store, each a child of the revision the file was last in step with (so an edit made
   while the server moved on becomes a conflict branch, never an overwrite); renamed files
   become moves (``renames``), empty folders documents of their own (``folders``).
2. ``push`` and ``pull``: the replication protocol (``replicate``).
3. ``apply``: documents changed in the local store since the last apply land in the folder; a
   document with more than one live leaf is resolved first (``resolve``), a file edited here in
   the meantime is never overwritten (the next scan makes its edit a branch, and it is merged).
4. ``push`` again when resolving wrote revisions, so the other devices see the same outcome.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from encryption_plugin import CryptoError, Keyring

from . import chunk_gc, chunks, folder, folders, notes, private, renames, versions
from .ignore import Ignore
from .localdb import DocTree, LocalDb
from .remote import Remote
from .replicate import Checkpoints, pull, push, replication_id
from .resolve import Resolver
from .state import FileRow, State

log = logging.getLogger("couchgate_sync")
SCAN_BATCH = 100  # files recorded per local-store transaction


@dataclass
class Counts:
    uploaded: int = 0
    downloaded: int = 0
    local_changes: int = 0
    written: int = 0
    removed: int = 0
    moved: int = 0
    resolved: int = 0
    failed: list[str] = field(default_factory=list)

    def any(self) -> bool:
        return bool(self.uploaded or self.downloaded or self.local_changes or self.written
                    or self.removed or self.moved or self.resolved)


class FolderDevice:
    """A synced folder with its local store and state; ``open()`` before use, ``close()`` after."""

    def __init__(
        self,
        root: Path,
        state_dir: Path,
        keyring: Keyring,
        device: str,
        keep_days: int = versions.DEFAULT_KEEP_DAYS,
    ) -> None:
        self.root = root
        self.state_dir = state_dir
        self._lock_file: IO[bytes] | None = None
        self.keep_days = keep_days
        self.keyring = keyring
        self.device = device
        self.local = LocalDb(state_dir / "store.sqlite3")
        self.state = State(state_dir / "state.sqlite3")
        self.resolver = Resolver(self)
        self.pending: set[str] = set()  # documents whose chunks had not all arrived
        self._written_rows: list[FileRow] = []  # files written by apply, saved per page
        self._deleted: set[str] = set()  # file deletions apply makes last (see apply)
        self.blocked: set[str] = set()  # documents a file stood in the way of (see apply)
        self.case_insensitive: bool | None = None  # the folder's names; probed at first apply
        self.checkpoints: Checkpoints = {}  # replication checkpoints, read once per process
        self.remote: Remote | None = None  # the server of the cycle under way (None: offline)
        self.progress: Callable[[str, int], None] | None = None  # ("up"|"down"|"written", n)
        self.lock = asyncio.Lock()

    async def open(self, *, exclusive: bool = True) -> None:
        """Open the local store; ``exclusive``: also take the folder's lock, so two processes
        (a ``run`` and a ``sync``) never sync one folder at once."""
        if exclusive:
            self._lock_file = await asyncio.to_thread(_take_lock, self.state_dir / "lock")
        await self.local.open()

    async def close(self) -> None:
        await self.local.close()
        self.state.close()
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the lock

    # -- 1. folder -> local store ------------------------------------------------------------

    async def scan(self) -> int:
        """Record what changed in the folder as local revisions; how many files changed.

        Files are recorded in batches, each batch's revisions in one transaction of the local
        store and its rows in one of the state file; a crash between the two is recognised on
        the next scan (the stored content has the file's hash) and adopted, not stored twice.
        """
        if not self.root.is_dir():
            raise FileNotFoundError("the synced folder is missing (unmounted or moved?)")
        ignore = await asyncio.to_thread(Ignore.for_folder, self.root)
        listing = await asyncio.to_thread(folder.walk, self.root, ignore)
        seen = listing.files
        rows = await asyncio.to_thread(self.state.files)
        changed = [
            s for path, s in seen.items()
            if (row := rows.get(path)) is None or (row.size, row.mtime_ns) != (s.size, s.mtime_ns)
        ]
        gone = [row for path, row in rows.items() if path not in seen and not ignore.matches(path)]
        moved, changed, gone = await renames.detect(self, changed, gone, rows)
        count = 0
        for start in range(0, len(moved), SCAN_BATCH):
            count += await renames.record(self, moved[start : start + SCAN_BATCH])
        for start in range(0, len(changed), SCAN_BATCH):
            count += await self._record_files(changed[start : start + SCAN_BATCH], rows)
        for row in gone:
            count += await self._record_deletion(row)
        return count + await folders.record(self, listing, ignore)

    async def _record_files(self, batch: list[folder.Seen], rows: dict[str, FileRow]) -> int:
        writes: list[tuple[dict[str, Any], str | None]] = []
        pending: list[tuple[folder.Seen, str, str]] = []  # (file, doc id, sha) of each write
        adopted: list[FileRow] = []
        for s in batch:
            found = await self._prepare_file(s, rows.get(s.path))
            if isinstance(found, FileRow):
                adopted.append(found)
            elif found is not None:
                doc, parent, sha = found
                writes.append((doc, parent))
                pending.append((s, str(doc["_id"]), sha))
        revs = await self.local.write_children(writes) if writes else []
        recorded = [
            _row(s.path, doc_id, rev, s, sha) for (s, doc_id, sha), rev in zip(pending, revs,
                                                                              strict=True)
        ]
        if adopted or recorded:
            await asyncio.to_thread(self.state.put, adopted + recorded)
        return len(recorded)

    async def _prepare_file(
        self, s: folder.Seen, row: FileRow | None
    ) -> FileRow | tuple[dict[str, Any], str | None, str] | None:
        """What recording one file takes: a row to adopt as it is, or the sealed revision to
        write under its parent (with the file's hash), or None (gone, or too large)."""
        if s.size > notes.MAX_FILE_BYTES:
            log.warning("skipped a file larger than %d MiB (not supported yet)",
                        notes.MAX_FILE_BYTES >> 20)
            return None
        data = await asyncio.to_thread(folder.read, self.root, s.path)
        if data is None:
            return None
        sha = folder.digest(data)
        if row is not None and row.sha == sha:  # touched, not changed
            return _row(row.path, row.doc_id, row.rev, s, sha)
        doc_id = row.doc_id if row else notes.doc_id_for(s.path, self.keyring)
        tree = await self.local.tree(doc_id)
        current = await self.winner_note(tree)
        if tree is not None and current is not None and folder.digest(current.data) == sha:
            # Already stored (the same file on another device, or a sync cut short by a crash).
            return _row(s.path, doc_id, tree.winner, s, sha)
        if row is not None:
            parent: str | None = row.rev
        elif tree is not None and tree.deleted:
            parent = tree.winner  # re-creating a deleted file extends its deleted leaf
        else:
            parent = None  # new, or made here while another device made it too: a branch
        sealed = await self.seal_file(
            doc_id,
            s.path,
            data,
            mtime_ms=s.mtime_ns // 1_000_000,
            device=self.device,
            created=current.created if current else None,
            extra=renames.carried(current),
        )
        if row is not None:
            await self.save_version(doc_id, row.rev)
        return sealed, parent, sha

    async def _record_deletion(self, row: FileRow) -> int:
        tree = await self.local.tree(row.doc_id)
        if tree is not None and row.rev in tree.tree and not tree.tree[row.rev].deleted:
            await self.save_version(row.doc_id, row.rev)
            await self.local.write_child({"_id": row.doc_id, "_deleted": True}, row.rev)
        await asyncio.to_thread(self.state.drop, [row.path])
        return 1

    async def seal_file(
        self,
        doc_id: str,
        path: str,
        data: bytes,
        *,
        mtime_ms: int,
        device: str,
        created: str | None,
        chunk_ids: tuple[str, ...] = (),
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The sealed document of one version of a file (``extra``: fields it carries, such as
        a rename's link); a large file's chunks that the local store lacks are written first, so
        a chunk is always replicated before its file."""
        if not chunk_ids and len(data) > chunks.CHUNKED_ABOVE:
            cuts = await asyncio.to_thread(chunks.cuts, data, self.keyring)
            for cut in cuts:
                known = await self.local.tree(cut.id)
                if known is None or known.deleted:  # new, or collected: (re)written
                    sealed_piece = await asyncio.to_thread(
                        chunks.seal_chunk, cut.id, chunks.piece(data, cut), self.keyring
                    )
                    await self.local.write_child(sealed_piece, known.winner if known else None)
            chunk_ids = tuple(cut.id for cut in cuts)
        return await asyncio.to_thread(
            notes.seal_note,
            doc_id,
            path,
            data,
            mtime_ms=mtime_ms,
            device=device,
            created=created,
            keyring=self.keyring,
            chunks=chunk_ids,
            extra=extra,
        )

    async def save_version(self, doc_id: str, rev: str) -> None:
        """Keep the content of ``doc_id`` at ``rev`` as a version document before replacing it."""
        if self.keep_days <= 0:
            return
        note = await self.note_at(doc_id, rev)
        if note is None:
            return
        vid = versions.version_id(doc_id, rev, self.keyring)
        existing = await self.local.tree(vid)
        if existing is not None and not existing.deleted:
            return
        sealed = await asyncio.to_thread(
            versions.seal_version, note, doc_id, rev, self.keep_days, self.keyring
        )
        await self.local.write_child(sealed, existing.winner if existing else None)

    async def prune_versions(self) -> int:
        """Delete the version documents whose term is over (any device may; all agree)."""
        expired = await asyncio.to_thread(self.state.expired_versions, versions.now_ms())
        for vid in expired:
            tree = await self.local.tree(vid)
            if tree is not None and not tree.deleted:
                await self.local.write_child({"_id": vid, "_deleted": True}, tree.winner)
            await asyncio.to_thread(self.state.drop_version, vid)
        return len(expired)

    # -- 3. local store -> folder ------------------------------------------------------------

    async def apply(self, counts: Counts) -> None:
        """Land the local store's changes in the folder, page by page.

        Deleted files are removed last, after every page: the tombstone of a renamed file's
        old document may come before the new document, which renames the file rather than
        fetch it again. They are kept with the pending documents meanwhile (retried first by
        the next apply after a crash), so none is skipped.
        """
        ignore = await asyncio.to_thread(Ignore.for_folder, self.root)
        if self.case_insensitive is None:
            self.case_insensitive = await asyncio.to_thread(folder.case_insensitive, self.root)
        since = int(await asyncio.to_thread(self.state.meta, "applied_seq", "0"))
        waiting = set(json.loads(await asyncio.to_thread(self.state.meta, "pending", "[]")))
        waiting |= self.pending
        self.pending = set()
        for doc_id in sorted(waiting):
            await self._apply_doc(doc_id, ignore, counts)
        await self._save_written_rows()
        while True:
            ids, last = await self.local.changed_since(since)
            for doc_id in ids:
                await self._apply_doc(doc_id, ignore, counts)
            await self._save_written_rows()
            # Pending first: a crash between the two writes retries a document, never skips it.
            pending = json.dumps(sorted(self.pending | self._deleted | self.blocked))
            await asyncio.to_thread(self.state.set_meta, "pending", pending)
            if last != since:
                await asyncio.to_thread(self.state.set_meta, "applied_seq", str(last))
            if not ids or last == since:
                break
            since = last
        # Tried once more after every page: the move that makes way may have come after them.
        blocked, self.blocked = self.blocked, set()
        for doc_id in sorted(blocked):
            await self._apply_doc(doc_id, ignore, counts)
        await self._save_written_rows()
        self.pending |= self.blocked
        self.blocked = set()
        deleted, self._deleted = self._deleted, set()
        for doc_id in sorted(deleted):
            counts.removed += await self._remove_deleted(doc_id)
        pending = json.dumps(sorted(self.pending))
        await asyncio.to_thread(self.state.set_meta, "pending", pending)

    async def _apply_doc(self, doc_id: str, ignore: Ignore, counts: Counts) -> None:
        tree = await self.local.tree(doc_id)
        if tree is None:
            return
        if len(tree.live_leaves) > 1:
            await self._save_written_rows()
            counts.resolved += await self.resolver.resolve(tree)
            tree = await self.local.tree(doc_id)
            assert tree is not None
        row = await asyncio.to_thread(self.state.by_doc, doc_id)
        if row is not None and row.rev == tree.winner:
            return
        if tree.deleted:
            await asyncio.to_thread(self.state.drop_version, doc_id)
            if row is not None:
                self._deleted.add(doc_id)
            elif await folders.apply_deleted(self, doc_id):
                counts.removed += 1
            return
        note = await self.note_at(tree.id, tree.winner, kind=None)
        if note is not None and note.kind == versions.KIND:
            if (version := versions.row_of(doc_id, note)) is not None:
                await asyncio.to_thread(self.state.put_version, version)
            return
        if note is not None and note.kind == folders.KIND:
            counts.written += await folders.apply_live(self, doc_id, tree.winner, note.path,
                                                       ignore)
            return
        if note is None or note.kind != "file" or ignore.matches(note.path):
            return
        try:
            await asyncio.to_thread(folder.target, self.root, note.path)
        except folder.UnsafePath:
            log.warning("skipped a document whose path would leave the folder")
            return
        if (forwarded := await renames.moved_away(self, tree)) is not None:
            counts.resolved += forwarded
            return
        sha = folder.digest(note.data)
        if await renames.arrived(self, doc_id, tree.winner, note, sha, counts):
            return
        at_path = await asyncio.to_thread(self.state.get, note.path)
        if at_path is None and self.case_insensitive and (
            twin := await renames.case_twin(self, tree, note, self._written_rows)
        ):
            counts.resolved += twin
            return
        on_disk = await asyncio.to_thread(folder.stat_of, self.root, note.path)
        if on_disk is not None and at_path is None and await asyncio.to_thread(
            folder.is_dir, self.root, note.path
        ):
            # A folder of that name here, a file elsewhere: the file gives way, on every device.
            counts.resolved += await renames.move_aside(self, tree, note)
            return
        if on_disk is not None and (at_path is None or not await self.unchanged_on_disk(at_path)):
            data = await asyncio.to_thread(folder.read, self.root, note.path)
            if data is not None and folder.digest(data) == sha:
                await asyncio.to_thread(
                    self.state.put, [_row(note.path, doc_id, tree.winner, on_disk, sha)]
                )
            return  # edited here too: the next scan makes that edit a branch, then it merges
        try:
            written = await asyncio.to_thread(
                folder.write_atomic, self.root, note.path, note.data, note.mtime_ms
            )
        except (FileExistsError, NotADirectoryError):
            # A file stands where one of its folders should be (a file of that name here, a
            # folder elsewhere): the device with the folder moves that file aside, and the
            # move, once here, makes way; until then the document waits.
            self.blocked.add(doc_id)
            return
        # Saved with the page (see apply): a crash before that is recognised by the hash.
        self._written_rows.append(_row(note.path, doc_id, tree.winner, written, sha))
        counts.written += 1
        if self.progress is not None:
            self.progress("written", 1)

    async def _remove_deleted(self, doc_id: str) -> int:
        """Remove the file of a deleted document, unless it was edited here (the next scan
        makes the edit a revision) or renamed meanwhile (its row is the new document's)."""
        tree = await self.local.tree(doc_id)
        row = await asyncio.to_thread(self.state.by_doc, doc_id)
        if tree is None or not tree.deleted or row is None:
            return 0
        if await asyncio.to_thread(folder.stat_of, self.root, row.path) is None:
            await asyncio.to_thread(self.state.drop, [row.path])  # gone here too (or moved)
            return 0
        if not await self.unchanged_on_disk(row):
            return 0
        keep = await folders.kept(self)
        await asyncio.to_thread(folder.remove, self.root, row.path, keep)
        await asyncio.to_thread(self.state.drop, [row.path])
        return 1

    async def _save_written_rows(self) -> None:
        rows, self._written_rows = self._written_rows, []
        if rows:
            await asyncio.to_thread(self.state.put, rows)

    async def unchanged_on_disk(self, row: FileRow) -> bool:
        s = await asyncio.to_thread(folder.stat_of, self.root, row.path)
        return s is not None and (s.size, s.mtime_ns) == (row.size, row.mtime_ns)

    async def winner_note(self, tree: DocTree | None) -> notes.Note | None:
        if tree is None or tree.deleted:
            return None
        return await self.note_at(tree.id, tree.winner)

    async def note_at(
        self, doc_id: str, rev: str, kind: str | None = "file"
    ) -> notes.Note | None:
        stored = await self.local.revision(doc_id, rev)
        if stored is None:
            return None
        try:
            note = await asyncio.to_thread(notes.open_note, stored, self.keyring, kind=kind)
            if note is None or not note.chunks:
                return note
            parts = []
            for cid in note.chunks:
                tree = await self.local.tree(cid)
                piece_doc = await self.local.revision(cid, tree.winner) if tree else None
                if piece_doc is None or piece_doc.get("_deleted"):
                    self.pending.add(doc_id)  # not here yet: the next apply tries again
                    return None
                piece = await asyncio.to_thread(chunks.open_chunk, piece_doc, self.keyring)
                if piece is None:
                    return None
                parts.append(piece)
            return dataclasses.replace(note, data=b"".join(parts))
        except CryptoError:
            log.warning("a document could not be opened with this key and was skipped")
            return None

    # -- the cycle ---------------------------------------------------------------------------

    async def cycle(
        self, remote: Remote | None, *, upload: bool = True, download: bool = True
    ) -> Counts:
        """One full sync; offline (``remote`` None) it only records and applies local state.

        ``run`` skips the half it has no reason for: a change in the folder needs no pull (the
        server's feed says when there is something to pull), a change on the server no scan.
        A revoked device learns it at its first request, before anything reaches the folder.
        """
        async with self.lock:
            self.remote = remote
            counts = Counts()
            in_step = False
            if upload:
                # Recorded first, so edits made offline are local revisions (and kept versions)
                # even while the server is away; the scan changes no file.
                counts.local_changes = await self.scan()
            if remote is not None:
                me = await self.local.uuid()
                push_id = replication_id(me, remote.db_url, "push")
                pull_id = replication_id(me, remote.db_url, "pull")
                if upload:
                    counts.uploaded += await push(
                        self.local, remote, push_id, self._tell("up"), self.checkpoints
                    )
                if download or not self.checkpoints:
                    pulled, seq = await pull(
                        self.local, remote, pull_id, self._tell("down"), self.checkpoints
                    )
                    counts.downloaded += pulled
                    await asyncio.to_thread(self.state.set_meta, "remote_seq", str(seq))
                    in_step = True
            await self.apply(counts)
            pruned = await self.prune_versions()
            pruned += await chunk_gc.heal(self, self.pending) if self.pending else 0
            if in_step:  # chunks are collected only on a view just brought up to date
                pruned += await chunk_gc.collect(self)
            if remote is not None and (counts.resolved or pruned):
                counts.uploaded += await push(
                    self.local, remote, push_id, self._tell("up"), self.checkpoints
                )
            if remote is not None:
                await asyncio.to_thread(self.state.set_meta, "last_sync", str(int(time.time())))
            return counts

    def _tell(self, what: str) -> Callable[[int], None] | None:
        progress = self.progress
        if progress is None:
            return None
        return lambda n: progress(what, n)


class FolderBusy(Exception):
    def __init__(self) -> None:
        super().__init__("another couchgate-sync is already syncing this folder")


def _take_lock(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "ab", opener=private.opener)  # noqa: SIM115 (held while the device is)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FolderBusy() from None
    return handle


def _row(path: str, doc_id: str, rev: str, s: folder.Seen, sha: str) -> FileRow:
    return FileRow(path, doc_id, rev, s.size, s.mtime_ns, sha)
