"""The device's own database: the embedded store's engine, in-process, on a SQLite file.

Documents are kept exactly as the server keeps them (sealed ``ep1``), so replication between
the two moves revisions verbatim and the revision trees, winners and conflicts are the engine's,
which follows CouchDB's rules. Opening a document for the folder happens above this module.
Everything runs on the store's own threads (``Storage``), never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from couchlite import changes, engine, reads, revtree
from couchlite.documents import Edit, parse_edit
from couchlite.errors import Conflict, CouchError, FileExists, NotFound
from couchlite.storage import Storage

from . import private
from .config import data_dir

DB = "folder"


@dataclass(frozen=True)
class DocTree:
    """A document's revision tree and current winner, as the engine keeps it."""

    id: str
    seq: int
    winner: str
    deleted: bool
    tree: dict[str, revtree.RevNode]

    @property
    def live_leaves(self) -> list[str]:
        return [rev for rev in revtree.leaves(self.tree) if not self.tree[rev].deleted]


def new_rev(parent: str | None) -> str:
    """A random revision id one above ``parent``: like the JS plugin's local databases, no
    digest of the plaintext, so revision ids say nothing about contents."""
    pos = revtree.rev_pos(parent) + 1 if parent else 1
    return f"{pos}-{uuid.uuid4().hex}"


class LocalDb:
    """One database ``folder`` in ``path``; ``open()`` before use, ``close()`` after."""

    def __init__(self, path: Path) -> None:
        # Only this client writes it (commands beside ``run`` ask the running process).
        self.storage = Storage(path, readers=2, shared=False)

    def _private(self) -> None:
        private.database(self.storage.path, data_dir())

    async def open(self) -> None:
        await asyncio.to_thread(self._private)
        await self.storage.open()
        with contextlib.suppress(FileExists):
            await self.storage.write(engine.create_db, DB)

    async def close(self) -> None:
        await self.storage.close()

    async def uuid(self) -> str:
        return await self.storage.write(engine.server_uuid, uuid.uuid4().hex)

    # -- replication primitives (what CouchDB's endpoints of the same name do) ---------------

    async def changes(self, since: int, limit: int) -> changes.ChangesPage:
        q = changes.ChangesQuery(since=since, limit=limit, all_docs=True)
        return await self.storage.read(changes.read_changes, DB, q)

    async def revs_diff(self, wanted: dict[str, list[str]]) -> dict[str, Any]:
        return await self.storage.read(reads.revs_diff, DB, dict(wanted))

    async def bulk_get(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        opts = reads.DocOptions(revs=True, attachments=True)
        return await self.storage.read(reads.bulk_get, DB, requests, opts)

    async def bulk_docs_replicated(self, docs: list[dict[str, Any]]) -> list[str]:
        """Write replicated revisions (``new_edits=false``); the ids that failed."""
        edits: list[Edit | CouchError] = []
        for doc in docs:
            try:
                edits.append(parse_edit(doc, new_edits=False))
            except CouchError as exc:
                edits.append(exc)
        results = await self.storage.write(engine.update_docs, DB, edits, new_edits=False)
        return [
            doc.get("_id", "?")
            for doc, r in zip(docs, results, strict=True)
            if isinstance(r, CouchError)
        ]

    async def get_local(self, doc_id: str) -> dict[str, Any] | None:
        try:
            return await self.storage.read(reads.get_local, DB, doc_id)
        except NotFound:
            return None

    async def put_local(self, doc: dict[str, Any]) -> str | None:
        """Write a ``_local`` document; its new revision, None when ``_rev`` is stale (another
        process wrote it since: ``replicate`` re-reads it and writes once more)."""
        try:
            edit = parse_edit(doc, new_edits=True)
            return await self.storage.write(engine.put_local_doc, DB, edit)
        except Conflict:
            return None

    # -- what the folder side needs ----------------------------------------------------------

    async def tree(self, doc_id: str) -> DocTree | None:
        return await self.storage.read(_tree, doc_id)

    async def revision(self, doc_id: str, rev: str) -> dict[str, Any] | None:
        """Revision ``rev`` with its attachments inline, or None when its body is not kept."""
        opts = reads.DocOptions(attachments=True)
        found = await self.storage.read(reads.open_revs, DB, doc_id, [rev], opts)
        rendered = found[0][1] if found else None
        return rendered.doc if rendered is not None else None

    async def trees(self, doc_ids: list[str]) -> dict[str, DocTree]:
        """:meth:`tree` of each document that exists, in one read (a page of them)."""
        return await self.storage.read(_trees, doc_ids)

    async def winners(self, trees: list[DocTree], budget: int) -> dict[str, dict[str, Any]]:
        """:meth:`revision` of each tree's winner whose body is kept, by doc id, in one read,
        in order while they hold at most ``budget`` bytes of bodies and attachments: a page of
        large files is never in memory at once (the caller takes the rest one by one). The
        trees just read are used as they are, not read again."""
        return await self.storage.read(_winners, trees, budget)

    async def write_child(self, doc: dict[str, Any], parent: str | None) -> str:
        """Store ``doc`` (already sealed) as a new revision under ``parent`` (None: a new root).

        Written as a replicated path, so when ``parent`` is no longer a leaf (the server moved
        on meanwhile) the edit becomes a branch, i.e. a conflict, rather than a refusal: the
        conflict resolver then merges it, as CouchDB's model intends.
        """
        (rev,) = await self.write_children([(doc, parent)])
        return rev

    async def write_children(self, writes: list[tuple[dict[str, Any], str | None]]) -> list[str]:
        """Several :meth:`write_child` in one transaction: all of them or none."""
        children = [
            engine.Child(
                parse_edit(
                    {k: v for k, v in doc.items() if k not in ("_rev", "_revisions")},
                    new_edits=True,
                ),
                parent,
                new_rev(parent),
            )
            for doc, parent in writes
        ]
        return await self.storage.write(engine.add_children, DB, children)

    async def changed_since(self, since: int, limit: int = 500) -> tuple[list[str], int]:
        page = await self.changes(since, limit)
        return [row["id"] for row in page.rows], page.last_seq

    async def leaves(self, doc_ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """Every leaf of each document, attachments as stubs (one read for a page of them)."""
        return await self.storage.read(_open_leaves, doc_ids)

    async def conflicted(self) -> int:
        """How many documents still have more than one live leaf."""
        return await self.storage.read(reads.conflicted_count, DB)

    async def update_seq(self) -> int:
        return await self.storage.read(changes.current_seq, DB)


def _tree(conn: sqlite3.Connection, doc_id: str) -> DocTree | None:
    return _trees(conn, [doc_id]).get(doc_id)


def _trees(conn: sqlite3.Connection, doc_ids: list[str]) -> dict[str, DocTree]:
    db = engine.get_db(conn, DB)
    found: dict[str, DocTree] = {}
    for doc_id in doc_ids:
        stored = reads.load_doc(conn, db.id, doc_id)
        if stored is not None:
            found[doc_id] = DocTree(
                stored.id, stored.seq, stored.winner, stored.deleted, stored.tree
            )
    return found


def _winners(
    conn: sqlite3.Connection, trees: list[DocTree], budget: int
) -> dict[str, dict[str, Any]]:
    db = engine.get_db(conn, DB)
    opts = reads.DocOptions(attachments=True)
    found: dict[str, dict[str, Any]] = {}
    held = 0
    for t in trees:
        stored = reads.StoredDoc(t.id, t.seq, t.winner, t.deleted, t.tree)
        rendered = reads.render(conn, db.id, stored, t.winner, opts)
        if rendered is None:
            continue
        held += _size_of(rendered.doc)
        if held > budget:
            break  # this one and the rest: one at a time
        found[t.id] = rendered.doc
    return found


def _size_of(doc: dict[str, Any]) -> int:
    """Roughly the bytes ``doc`` holds: its strings (the sealed body) and attachments' data."""
    atts = doc.get("_attachments") or {}
    inline = sum(len(att.get("data") or "") for att in atts.values())
    return inline + sum(len(value) for value in doc.values() if isinstance(value, str))


def _open_leaves(conn: sqlite3.Connection, doc_ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (doc_id, rendered.doc)
        for doc_id in doc_ids
        for _, rendered in reads.open_revs(conn, DB, doc_id, None, reads.DocOptions())
        if rendered is not None
    ]
