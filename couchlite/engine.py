"""The write side of the engine: databases, document edits, ``_local`` docs.

Every function takes the writer's ``sqlite3.Connection`` already inside a transaction (see
``storage.Storage.write``) and is synchronous: concurrency is settled by there being one writer,
so a stale ``_rev`` is always seen as stale (409) and a replicated branch always merges.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from . import attachments, revtree
from .documents import Edit
from .errors import (
    Conflict,
    CouchError,
    FileExists,
    LocalRevFormat,
    MissingRev,
    MissingStub,
    NotFound,
    db_not_found,
)

DEFAULT_SECURITY = {"members": {"roles": ["_admin"]}, "admins": {"roles": ["_admin"]}}


@dataclass(frozen=True)
class Db:
    id: int
    name: str
    update_seq: int
    doc_count: int
    doc_del_count: int
    revs_limit: int
    security: str
    created_at: float


def get_db(conn: sqlite3.Connection, name: str) -> Db:
    row = conn.execute(
        "SELECT id, name, update_seq, doc_count, doc_del_count, revs_limit, security, created_at"
        " FROM dbs WHERE name = ?",
        (name,),
    ).fetchone()
    if row is None:
        raise db_not_found()
    return Db(*row)


def create_db(conn: sqlite3.Connection, name: str) -> None:
    try:
        conn.execute(
            "INSERT INTO dbs (name, security, created_at) VALUES (?, ?, ?)",
            (name, json.dumps(DEFAULT_SECURITY), time.time()),
        )
    except sqlite3.IntegrityError:
        raise FileExists() from None
    record_db_event(conn, name, "created")


def record_db_event(conn: sqlite3.Connection, name: str, kind: str) -> None:
    """Note ``created``/``updated``/``deleted`` of ``name`` for ``_db_updates``."""
    conn.execute(
        "INSERT INTO db_updates (db_name, seq, type)"
        " VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM db_updates), ?)"
        " ON CONFLICT (db_name) DO UPDATE SET seq = excluded.seq, type = excluded.type",
        (name, kind),
    )


def delete_db(conn: sqlite3.Connection, name: str) -> None:
    db = get_db(conn, name)
    for table in ("docs", "revs", "blobs", "local_docs"):
        conn.execute(f"DELETE FROM {table} WHERE db = ?", (db.id,))
    conn.execute("DELETE FROM dbs WHERE id = ?", (db.id,))
    record_db_event(conn, name, "deleted")


def set_security(conn: sqlite3.Connection, name: str, security: dict[str, Any]) -> None:
    db = get_db(conn, name)
    conn.execute("UPDATE dbs SET security = ? WHERE id = ?", (json.dumps(security), db.id))


def set_revs_limit(conn: sqlite3.Connection, name: str, limit: int) -> None:
    db = get_db(conn, name)
    conn.execute("UPDATE dbs SET revs_limit = ? WHERE id = ?", (limit, db.id))


def server_uuid(conn: sqlite3.Connection, fresh: str) -> str:
    """The server's uuid, made once and kept in the file (replication ids may depend on it)."""
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('uuid', ?)", (fresh,))
    return str(conn.execute("SELECT value FROM meta WHERE key = 'uuid'").fetchone()[0])


@dataclass(frozen=True)
class Written:
    id: str
    rev: str


def update_docs(
    conn: sqlite3.Connection, name: str, edits: Sequence[Edit | CouchError], *, new_edits: bool
) -> list[Written | CouchError]:
    """Apply edits in order, each all-or-nothing (a savepoint), reporting per document."""
    db = get_db(conn, name)
    state = _Counters(db)
    results: list[Written | CouchError] = []
    ignored = set() if new_edits else _not_new_leaves(conn, db, edits)
    for index, edit in enumerate(edits):
        if isinstance(edit, CouchError):
            results.append(edit)
            continue
        if index in ignored:
            assert edit.path is not None
            results.append(Written(edit.id, edit.path[0]))
            continue
        conn.execute("SAVEPOINT doc")
        try:
            if edit.is_local:
                rev = put_local(conn, db, edit)
            else:
                rev = _apply(conn, db, state, edit, new_edits=new_edits)
        except MissingStub:
            raise  # CouchDB refuses the whole batch (on one shard, none of it is written)
        except CouchError as exc:
            conn.execute("ROLLBACK TO doc")
            conn.execute("RELEASE doc")
            results.append(exc)
            continue
        conn.execute("RELEASE doc")
        results.append(Written(edit.id, rev))
    state.number_docs(conn)
    state.save(conn)
    if state.seq != db.update_seq:
        record_db_event(conn, name, "updated")
    return results


def _not_new_leaves(
    conn: sqlite3.Connection, db: Db, edits: Sequence[Edit | CouchError]
) -> set[int]:
    """The replicated revisions CouchDB leaves out of a batch, by their index in it.

    When any document of a ``new_edits=false`` batch has attachments or is a design document,
    CouchDB 3.5 checks the batch first (couch_db's prep_and_validate_replicated_updates): of a
    document it already has, a revision that is not a new leaf of the tree the whole batch makes
    (an ancestor taking its body, a leaf it had) is answered ok and not written, so it is no
    change. Otherwise each revision is merged as it comes, and an ancestor takes its body.
    """
    docs = [(i, e) for i, e in enumerate(edits) if isinstance(e, Edit) and not e.is_local]
    if not any(e.attachments or e.id.startswith("_design/") for _, e in docs):
        return set()
    by_id: dict[str, list[tuple[int, Edit]]] = {}
    for index, edit in docs:
        by_id.setdefault(edit.id, []).append((index, edit))
    ignored: set[int] = set()
    for doc_id, group in by_id.items():
        row = conn.execute(
            "SELECT tree FROM docs WHERE db = ? AND id = ?", (db.id, doc_id)
        ).fetchone()
        if row is None:
            continue  # a document it does not have: every revision is written
        tree = revtree.loads(row[0])
        old_leaves = set(revtree.leaves(tree))
        merged: revtree.Tree = tree
        for _, edit in group:
            assert edit.path is not None
            merged, _new = revtree.merge_path(merged, edit.path, edit.deleted)
        new_leaves = set(revtree.leaves(merged)) - old_leaves
        ignored.update(i for i, e in group if e.path is not None and e.path[0] not in new_leaves)
    return ignored


@dataclass(frozen=True)
class Child:
    """A revision made on this replica: ``rev`` (one position above ``parent``) of ``edit.id``,
    made from ``parent`` (None: a new root)."""

    edit: Edit
    parent: str | None
    rev: str


def add_children(conn: sqlite3.Connection, name: str, children: Sequence[Child]) -> list[str]:
    """Write revisions made here under the revisions they were made from, leaves or not.

    An interactive edit (``new_edits=true``) of a revision that is no longer a leaf is refused
    (409). A replica that edits offline (the folder client) wants the opposite: its edit kept
    as a branch beside what arrived meanwhile, the conflict CouchDB's model has for it, exactly
    as if the edit had been made elsewhere and replicated in. So each child is written as a
    replicated path (``new_edits=false``), its ancestry taken from the stored tree inside this
    transaction. All or none: a refused child raises, and the caller's transaction rolls back.
    """
    db_id = get_db(conn, name).id
    written: list[str] = []
    batch: list[Edit] = []  # one update of many documents, each in it once
    ids: set[str] = set()

    def write_batch() -> None:
        for result in update_docs(conn, name, batch, new_edits=False):
            if isinstance(result, CouchError):
                raise result
            written.append(result.rev)
        batch.clear()
        ids.clear()

    for child in children:
        if revtree.rev_pos(child.rev) != (revtree.rev_pos(child.parent) if child.parent else 0) + 1:
            raise ValueError("a child revision sits one position above its parent")
        if child.edit.id in ids:
            write_batch()  # its ancestry is read from the tree that write makes
        ids.add(child.edit.id)
        path = [child.rev]
        if child.parent is not None:
            row = conn.execute(
                "SELECT tree FROM docs WHERE db = ? AND id = ?", (db_id, child.edit.id)
            ).fetchone()
            known = revtree.ancestry(revtree.loads(row[0]), child.parent) if row else []
            path += known or [child.parent]
        batch.append(dataclasses.replace(child.edit, rev=child.rev, path=path))
    if batch:
        write_batch()
    return written


class _Counters:
    """update_seq and doc counts, carried through one batch and saved once."""

    def __init__(self, db: Db) -> None:
        self.db = db
        self.seq = db.update_seq
        self.doc_count = db.doc_count
        self.doc_del_count = db.doc_del_count
        self.touched: set[str] = set()
        self._placeholders = 0

    def number_docs(self, conn: sqlite3.Connection) -> None:
        """One new sequence per document the batch changed, however many of its revisions it
        wrote, given in the order of the documents' ids (as CouchDB's updater groups a batch)."""
        for doc_id in sorted(self.touched, key=lambda i: i.encode()):
            self.seq += 1
            conn.execute(
                "UPDATE docs SET seq = ? WHERE db = ? AND id = ?", (self.seq, self.db.id, doc_id)
            )
        self.touched.clear()

    def placeholder(self, doc_id: str) -> int:
        """A sequence for ``doc_id`` until the batch is done: negative, and unique (sequences
        are), so it can stand in no other document's place."""
        self.touched.add(doc_id)
        self._placeholders -= 1
        return self._placeholders

    def save(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE dbs SET update_seq = ?, doc_count = ?, doc_del_count = ? WHERE id = ?",
            (self.seq, self.doc_count, self.doc_del_count, self.db.id),
        )


def new_rev_id(pos: int, parent: str | None, edit: Edit, atts: attachments.Atts) -> str:
    """Deterministic: the same edit of the same parent gives the same revision on any replica."""
    digests = sorted((name, meta["digest"]) for name, meta in atts.items())
    material = json.dumps(
        [edit.deleted, parent, edit.body, digests], sort_keys=True, separators=(",", ":")
    )
    return f"{pos}-{hashlib.md5(material.encode()).hexdigest()}"


def _apply(
    conn: sqlite3.Connection, db: Db, state: _Counters, edit: Edit, *, new_edits: bool
) -> str:
    row = conn.execute(
        "SELECT tree, deleted FROM docs WHERE db = ? AND id = ?", (db.id, edit.id)
    ).fetchone()
    tree: dict[str, revtree.RevNode] = revtree.loads(row[0]) if row else {}
    was_deleted: bool | None = bool(row[1]) if row else None
    if new_edits:
        parent = _parent_for(tree, edit, written_before=db.update_seq > 0)
        pos = revtree.rev_pos(parent) + 1 if parent else 1
        base = _rev_atts(conn, db.id, edit.id, parent) if parent else {}
        atts = attachments.resolve(
            conn,
            db.id,
            edit.id,
            edit.attachments or {},
            base,
            pos,
            new_edits=True,
            follows=edit.follows,
        )
        rev = new_rev_id(pos, parent, edit, atts)
        if rev in tree:
            raise Conflict()
        if parent is not None and parent not in tree:
            # A new document named with a _rev: CouchDB makes it that revision's child, known
            # by id only (its body "missing"), as a replicated ancestor would be.
            tree = revtree.add_child(tree, None, parent, False)
        tree = revtree.add_child(tree, parent, rev, edit.deleted)
    else:
        assert edit.path is not None
        rev = edit.path[0]
        if rev in tree and _has_body(conn, db.id, edit.id, rev):
            grafted = revtree.graft(tree, edit.path)
            if grafted is None:
                return rev  # already have it: CouchDB answers ok and changes nothing
            tree, takes_body = grafted
            if not takes_body:
                _save_tree(conn, db, state, edit.id, tree, was_deleted)
                return rev
            tree = {**tree, rev: revtree.RevNode(tree[rev].parent, edit.deleted)}
        base = _nearest_atts(conn, db.id, edit.id, edit.path[1:])
        atts = attachments.resolve(
            conn,
            db.id,
            edit.id,
            edit.attachments or {},
            base,
            revtree.rev_pos(rev),
            new_edits=False,
            follows=edit.follows,
        )
        if rev in tree:
            # An ancestor known by id only gets its body (a change, as in CouchDB).
            tree = {**tree, rev: revtree.RevNode(tree[rev].parent, edit.deleted)}
        else:
            tree, _ = revtree.merge_path(tree, edit.path, edit.deleted)
    conn.execute(
        "INSERT OR REPLACE INTO revs (db, doc, rev, deleted, body, atts) VALUES (?, ?, ?, ?, ?, ?)",
        (db.id, edit.id, rev, int(edit.deleted), _dump(edit.body), _dump(atts) if atts else None),
    )
    _save_tree(conn, db, state, edit.id, tree, was_deleted)
    return rev


def _save_tree(
    conn: sqlite3.Connection,
    db: Db,
    state: _Counters,
    doc_id: str,
    tree: revtree.Tree,
    was_deleted: bool | None,
) -> None:
    """The document's new tree (stemmed to the database's limit), winner and counts: a change."""
    stemmed = revtree.stem(tree, db.revs_limit)
    for dropped in tree.keys() - stemmed.keys():
        conn.execute(
            "DELETE FROM revs WHERE db = ? AND doc = ? AND rev = ?", (db.id, doc_id, dropped)
        )
    winner = revtree.winner(stemmed)
    deleted = stemmed[winner].deleted
    conn.execute(
        "INSERT OR REPLACE INTO docs (db, id, seq, rev, deleted, tree) VALUES (?, ?, ?, ?, ?, ?)",
        (db.id, doc_id, state.placeholder(doc_id), winner, int(deleted), revtree.dumps(stemmed)),
    )
    if was_deleted is None:
        state.doc_count += 0 if deleted else 1
        state.doc_del_count += 1 if deleted else 0
    elif was_deleted != deleted:
        state.doc_count += -1 if deleted else 1
        state.doc_del_count += 1 if deleted else -1


def _has_body(conn: sqlite3.Connection, db: int, doc_id: str, rev: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM revs WHERE db = ? AND doc = ? AND rev = ?", (db, doc_id, rev)
    ).fetchone()
    return found is not None


def _parent_for(tree: revtree.Tree, edit: Edit, *, written_before: bool) -> str | None:
    """The revision an interactive edit extends, or ``Conflict`` as CouchDB decides it.

    A ``_rev`` naming a document CouchDB does not have is taken as its parent, except in a
    database (a shard, there) nothing was ever written to, where it is a conflict: CouchDB
    3.5.2's own inconsistency, kept so that the two answer alike.
    """
    if not tree:
        if edit.rev is not None and not written_before:
            raise Conflict()
        return edit.rev
    if edit.rev is None:
        current = revtree.winner(tree)
        if not tree[current].deleted or edit.deleted:
            # Deleting a deleted document without naming a revision re-creates nothing: a
            # conflict in CouchDB (couch_db_updater finds the new leaf deleted over a deleted one).
            raise Conflict()
        return current  # re-creating a deleted document extends its deleted leaf
    if not revtree.is_leaf(tree, edit.rev):
        raise Conflict()
    return edit.rev


def _rev_atts(conn: sqlite3.Connection, db: int, doc_id: str, rev: str) -> attachments.Atts:
    row = conn.execute(
        "SELECT atts FROM revs WHERE db = ? AND doc = ? AND rev = ?", (db, doc_id, rev)
    ).fetchone()
    return json.loads(row[0]) if row and row[0] else {}


def _nearest_atts(
    conn: sqlite3.Connection, db: int, doc_id: str, ancestors: list[str]
) -> attachments.Atts:
    for rev in ancestors:
        row = conn.execute(
            "SELECT atts FROM revs WHERE db = ? AND doc = ? AND rev = ?", (db, doc_id, rev)
        ).fetchone()
        if row is not None:
            return json.loads(row[0]) if row[0] else {}
    return {}


def _dump(value: object) -> str:
    """A body or attachment index as stored. A body of strings, integers and booleans only (a
    sealed document's ``{"e2e": ...}``) is encoded by ``orjson``, whose text for those is
    ``json``'s to the byte, several times faster."""
    if _flat(value):
        try:
            return orjson.dumps(value).decode()
        except TypeError:  # a lone surrogate, an integer past 64 bits: json takes those
            pass
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_FLAT = frozenset({str, int, bool})


def _flat(value: object) -> bool:
    return (
        type(value) is dict
        and _FLAT.issuperset(map(type, value.values()))
        and all(type(key) is str for key in value)
    )


# -- _local documents: no revision tree, not in _changes or _all_docs, rev "0-N" -------------


def put_local(conn: sqlite3.Connection, db: Db, edit: Edit) -> str:
    """CouchDB's rules for ``_local`` documents: no conflicts at all. The new revision is
    ``0-(N+1)`` for a given ``0-N`` (``0-1`` without one), whatever is stored; ``_deleted``
    removes the document, there or not, and answers ``0-0``."""
    number = _local_number(edit.rev)
    if edit.deleted:
        conn.execute("DELETE FROM local_docs WHERE db = ? AND id = ?", (db.id, edit.id))
        return "0-0"
    conn.execute(
        "INSERT OR REPLACE INTO local_docs (db, id, rev, body) VALUES (?, ?, ?, ?)",
        (db.id, edit.id, number + 1, _dump(edit.body)),
    )
    return f"0-{number + 1}"


def _local_number(rev: str | None) -> int:
    if rev is None:
        return 0
    pos, _, number = rev.partition("-")
    if pos != "0" or not number.isdigit():
        raise LocalRevFormat()
    return int(number)


def delete_local(conn: sqlite3.Connection, name: str, doc_id: str, rev: str | None) -> str:
    """``DELETE /db/_local/id``: any revision (or none) deletes what is there."""
    db = get_db(conn, name)
    row = conn.execute(
        "SELECT rev FROM local_docs WHERE db = ? AND id = ?", (db.id, doc_id)
    ).fetchone()
    if row is None:
        raise NotFound("missing")
    conn.execute("DELETE FROM local_docs WHERE db = ? AND id = ?", (db.id, doc_id))
    return "0-0"


def put_local_doc(conn: sqlite3.Connection, name: str, edit: Edit) -> str:
    return put_local(conn, get_db(conn, name), edit)


def edit_attachment(
    conn: sqlite3.Connection,
    name: str,
    doc_id: str,
    att: str,
    rev: str | None,
    content: tuple[str, bytes] | None,
) -> Written:
    """Standalone attachment ``PUT`` (``content``) or ``DELETE`` (None): a new revision that keeps
    the body and every other attachment as stubs."""
    db = get_db(conn, name)
    row = conn.execute(
        "SELECT tree, deleted FROM docs WHERE db = ? AND id = ?", (db.id, doc_id)
    ).fetchone()
    body: dict[str, Any] = {}
    atts: attachments.Atts = {}
    if row is None and rev is not None:
        raise MissingRev()
    if row is None and content is None:
        raise NotFound("missing")
    if row is not None and rev is None and content is None:
        # CouchDB opens the document first: a deleted one is 404, one without the attachment
        # too, and a live one with it a conflict (no revision named).
        if row[1]:
            raise NotFound("deleted")
        if att not in _rev_atts(conn, db.id, doc_id, revtree.winner(revtree.loads(row[0]))):
            raise NotFound("Document is missing attachment")
        raise Conflict()
    if row is not None and rev is not None:
        tree = revtree.loads(row[0])
        if rev not in tree or not _has_body(conn, db.id, doc_id, rev):
            raise MissingRev()  # CouchDB cannot open it: known by id only is missing too
        if not revtree.is_leaf(tree, rev):
            raise Conflict()
        stored = conn.execute(
            "SELECT body, atts FROM revs WHERE db = ? AND doc = ? AND rev = ?",
            (db.id, doc_id, rev),
        ).fetchone()
        if stored is not None:
            body = json.loads(stored[0])
            atts = json.loads(stored[1]) if stored[1] else {}
    incoming: dict[str, Any] = {other: {"stub": True} for other in atts}
    follows: dict[str, bytes] = {}
    if content is None:
        if att not in incoming:
            raise NotFound("Document is missing attachment")
        del incoming[att]
    else:
        incoming[att] = {"follows": True, "content_type": content[0]}
        follows[att] = content[1]
    edit = Edit(doc_id, rev, None, False, body, incoming, follows)
    (result,) = update_docs(conn, name, [edit], new_edits=True)
    if isinstance(result, CouchError):
        raise result
    return result
