"""Settling a document with more than one live leaf, so that no word is lost.

For each losing leaf (CouchDB's winner rule decides which leaf wins, the same on every replica):
the same bytes as the winner: the loser is simply closed; two texts with a common ancestor whose
edits do not overlap: the three-way merge becomes a new revision of the winner; otherwise the
loser's content is kept as a conflict copy beside the file. The loser's leaf is then closed with a
tombstone. Every step depends only on the revisions (the common ancestor's body comes from the
local store, else from the server), never on which device resolves, so two devices that settle
the same conflict at once write the same contents, and the second round (identical bytes)
settles itself. A device offline, or a server that compacted the ancestor away, cannot merge:
it makes the conflict copy, which loses nothing either.
"""

from __future__ import annotations

import asyncio
from typing import Any

from couchlite import revtree
from encryption_plugin import CryptoError

from . import notes, renames
from .conflicts import conflict_copy, merged_text
from .contents import Contents
from .device import DeviceContext
from .localdb import DocTree
from .remote import Remote, RemoteError, Revoked, Unreachable


class Resolver:
    def __init__(self, context: DeviceContext, contents: Contents) -> None:
        self._context = context
        self._contents = contents

    async def resolve(self, tree: DocTree, remote: Remote | None) -> int:
        """Resolve every conflict of ``tree``; the number of revisions written. ``remote``: the
        server to ask for a common ancestor this device does not hold (None: offline).

        The outcome (merged revision, conflict copies, tombstones of the losers) is written in
        one transaction, so a crash leaves the conflict whole, to be settled again, never half
        settled with a loser closed and its words not yet merged.
        """
        local, contents = self._context.local, self._contents
        winner = await contents.note_at(tree.id, tree.winner, kind=None)
        if winner is None:
            return 0
        writes: list[tuple[dict[str, Any], str | None]] = []
        if winner.kind != "file":
            # Versions and chunks: both sides wrote the same content under the same id.
            writes = [({"_id": tree.id, "_deleted": True}, rev) for rev in tree.live_leaves[1:]]
            await local.write_children(writes)
            return len(writes)
        merged = winner
        for loser_rev in tree.live_leaves[1:]:
            loser = await contents.note_at(tree.id, loser_rev)
            if loser is None:
                continue  # not ours to settle (another kind of document, or another key)
            if loser.data != merged.data:
                combined = await self._merge(tree, loser_rev, merged, loser, remote)
                if combined is not None:
                    await contents.save_version(tree.id, loser_rev)
                    merged = combined
                elif (
                    copy := await conflict_copy(self._context, contents, winner.path, loser)
                ) is not None:
                    writes.append(copy)
            writes.append(({"_id": tree.id, "_deleted": True}, loser_rev))
        if merged is not winner:
            await contents.save_version(tree.id, tree.winner)
            sealed = await contents.seal_file(
                tree.id,
                winner.path,
                merged.data,
                mtime_ms=merged.mtime_ms,
                origin=winner.origin,
                created=winner.created,
                extra=renames.carried(winner),  # the merge keeps the file's rename history
            )
            writes.append((sealed, tree.winner))
        await local.write_children(writes)
        return len(writes)

    async def _merge(
        self,
        tree: DocTree,
        loser_rev: str,
        ours: notes.Note,
        theirs: notes.Note,
        remote: Remote | None,
    ) -> notes.Note | None:
        if not (ours.is_text and theirs.is_text):
            return None
        base = await self._common_ancestor(tree, loser_rev, remote)
        merged = merged_text(base, ours, theirs)
        if merged is None:
            return None
        return notes.Note(
            ours.path,
            merged,
            max(ours.mtime_ms, theirs.mtime_ms),
            ours.origin,
            ours.created,
            True,
        )

    async def _common_ancestor(
        self, tree: DocTree, loser_rev: str, remote: Remote | None
    ) -> notes.Note | None:
        ours = set(revtree.ancestry(tree.tree, tree.winner))
        for rev in revtree.ancestry(tree.tree, loser_rev):
            if rev in ours:
                if await self._context.local.revision(tree.id, rev) is None:
                    return await self._ancestor_from_server(tree.id, rev, remote)
                return await self._contents.note_at(tree.id, rev)
        return None

    async def _ancestor_from_server(
        self, doc_id: str, rev: str, remote: Remote | None
    ) -> notes.Note | None:
        """The ancestor's body from the server, for a device that knows it only by id (it came
        in as the ancestry of a leaf: this device never held that version, or compacted it).
        None offline or when the server no longer keeps it either (CouchDB drops non-leaf
        bodies at compaction): then the loser gets its conflict copy."""
        try:
            stored = await remote.revision(doc_id, rev) if remote is not None else None
        except (Revoked, Unreachable):
            raise  # the cycle stops; the conflict is settled when the server is back
        except RemoteError:
            return None  # refused (not a revision this server knows how to read): the copy
        if stored is None:
            return None
        try:
            note = await asyncio.to_thread(notes.open_note, stored, self._context.keyring)
        except CryptoError:
            return None
        return note if note is not None and not note.chunks else None  # chunked: not a text
