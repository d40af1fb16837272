"""The notes in a device's local store: opened and sealed with its keyring.

Everything that reads a file's content from the store or writes a new version of one goes
through :class:`Contents`: a large file's content is put together from its chunks (a chunk
not here yet leaves the document *missing*, for the next apply to try again), and a new
version's chunks are written before the file's document, so a chunk always replicates before
the file that lists it. Replaced contents are kept as version documents (``versions``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from encryption_plugin import CryptoError

from . import chunks, folder, notes, versions
from .device import DeviceContext
from .localdb import DocTree
from .state import FileRow

log = logging.getLogger("couchgate_sync")


class Contents:
    """Reading and writing the notes of ``context``'s store; ``device_name`` signs the versions
    this device writes, ``keep_days`` is how long replaced contents are kept (0: none)."""

    def __init__(self, context: DeviceContext, device_name: str, keep_days: int) -> None:
        self._context = context
        self.device_name = device_name
        self.keep_days = keep_days
        self._missing: set[str] = set()  # documents whose chunks had not all arrived

    def take_missing(self) -> set[str]:
        """The documents found missing a chunk since the last call (apply retries them)."""
        missing, self._missing = self._missing, set()
        return missing

    async def winner_note(self, tree: DocTree | None) -> notes.Note | None:
        if tree is None or tree.deleted:
            return None
        return await self.note_at(tree.id, tree.winner)

    async def note_at(self, doc_id: str, rev: str, kind: str | None = "file") -> notes.Note | None:
        local, keyring = self._context.local, self._context.keyring
        stored = await local.revision(doc_id, rev)
        if stored is None:
            return None
        try:
            note = await asyncio.to_thread(notes.open_note, stored, keyring, kind=kind)
            if note is None or not note.chunks:
                return note
            parts = []
            for cid in note.chunks:
                tree = await local.tree(cid)
                piece_doc = await local.revision(cid, tree.winner) if tree else None
                if piece_doc is None or piece_doc.get("_deleted"):
                    self._missing.add(doc_id)  # not here yet: the next apply tries again
                    return None
                piece = await asyncio.to_thread(chunks.open_chunk, piece_doc, keyring)
                if piece is None:
                    return None
                parts.append(piece)
            return dataclasses.replace(note, data=b"".join(parts))
        except CryptoError:
            log.warning("a document could not be opened with this key and was skipped")
            return None

    async def seal_file(
        self,
        doc_id: str,
        path: str,
        data: bytes,
        *,
        mtime_ms: int,
        origin: str,
        created: str | None,
        chunk_ids: tuple[str, ...] = (),
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The sealed document of one version of a file written on device ``origin``
        (``extra``: fields it carries, such as a rename's link); a large file's chunks that the
        local store lacks are written first, so a chunk is always replicated before its file."""
        local, keyring = self._context.local, self._context.keyring
        if not chunk_ids and len(data) > chunks.CHUNKED_ABOVE:
            cuts = await asyncio.to_thread(chunks.cuts, data, keyring)
            for cut in cuts:
                known = await local.tree(cut.id)
                if known is None or known.deleted:  # new, or collected: (re)written
                    sealed_piece = await asyncio.to_thread(
                        chunks.seal_chunk, cut.id, chunks.piece(data, cut), keyring
                    )
                    await local.write_child(sealed_piece, known.winner if known else None)
            chunk_ids = tuple(cut.id for cut in cuts)
        return await asyncio.to_thread(
            notes.seal_note,
            doc_id,
            path,
            data,
            mtime_ms=mtime_ms,
            origin=origin,
            created=created,
            keyring=keyring,
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
        local, keyring = self._context.local, self._context.keyring
        vid = versions.version_id(doc_id, rev, keyring)
        existing = await local.tree(vid)
        if existing is not None and not existing.deleted:
            return
        sealed = await asyncio.to_thread(
            versions.seal_version, note, doc_id, rev, self.keep_days, keyring
        )
        await local.write_child(sealed, existing.winner if existing else None)

    async def prune_versions(self) -> int:
        """Delete the version documents whose term is over (any device may; all agree)."""
        local, state = self._context.local, self._context.state
        expired = await asyncio.to_thread(state.expired_versions, versions.now_ms())
        for vid in expired:
            tree = await local.tree(vid)
            if tree is not None and not tree.deleted:
                await local.write_child({"_id": vid, "_deleted": True}, tree.winner)
            await asyncio.to_thread(state.drop_version, vid)
        return len(expired)


async def unchanged_on_disk(context: DeviceContext, row: FileRow) -> bool:
    """Whether the file of ``row`` is as the state file last saw it (size and mtime)."""
    s = await asyncio.to_thread(folder.stat_of, context.root, row.path)
    return s is not None and (s.size, s.mtime_ns) == (row.size, row.mtime_ns)


def row_of(path: str, doc_id: str, rev: str, s: folder.Seen, sha: str) -> FileRow:
    """The state row of the file ``s`` at ``path``, in step with ``doc_id`` at ``rev``."""
    return FileRow(path, doc_id, rev, s.size, s.mtime_ns, sha)
