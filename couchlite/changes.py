"""``_changes``: reading the by-seq index, and waking live feeds the moment a write commits.

Like CouchDB, a document appears once, at the seq of its latest change (the ``docs`` table keeps
one row per document with its current seq, indexed by ``(db, seq)``). Seqs are integers, as
pouchdb-server's are; PouchDB and CouchDB's replicator treat them as opaque.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import revtree, selector
from .engine import get_db
from .reads import DocOptions, StoredDoc, render

_SQL_MAX = 2**63 - 1  # SQLite's largest integer: a limit + 1 must stay below it


@dataclass(frozen=True)
class ChangesQuery:
    since: int = 0
    limit: int | None = None
    descending: bool = False
    all_docs: bool = False
    include_docs: bool = False
    conflicts: bool = False
    attachments: bool = False
    doc_ids: frozenset[str] | None = None
    selector: Mapping[str, Any] | None = None
    design_only: bool = False  # filter=_design


@dataclass(frozen=True)
class ChangesPage:
    rows: list[dict[str, Any]]
    last_seq: int
    pending: int


def read_changes(conn: sqlite3.Connection, name: str, q: ChangesQuery) -> ChangesPage:
    """One page of changes after ``q.since`` (or from the newest when descending).

    ``last_seq`` and ``pending`` are CouchDB 3.5's (fabric_view_changes' collector over one
    shard): each row read carries the changes still after it; the feed stops at the first row
    read once the ``limit`` is spent. A row a ``_selector`` passes over still moves ``last_seq``
    (and, met first with the limit spent, gives ``pending``); a passing row met then is not sent
    and counts itself in ``pending``. A read that reaches the end reports the end.
    """
    db = get_db(conn, name)
    where: list[str] = ["db = ?"]
    args: list[Any] = [db.id]
    if not q.descending:
        where.append("seq > ?")
        args.append(q.since)
    if q.doc_ids is not None:
        where.append(f"id IN ({','.join('?' * len(q.doc_ids))})")
        args.extend(sorted(q.doc_ids))
    if q.design_only:
        where.append("id >= '_design/' AND id < '_design0'")
    order = "DESC" if q.descending else "ASC"
    sql = (
        f"SELECT id, seq, rev, deleted, tree FROM docs WHERE {' AND '.join(where)}"
        f" ORDER BY seq {order} LIMIT ?"
    )
    # A selector filters after reading, so SQL cannot apply the limit for it; otherwise the
    # row after the limit is read too (it is where the feed stops).
    bounded = q.limit is not None and q.selector is None and q.limit < _SQL_MAX
    args.append(q.limit + 1 if bounded and q.limit is not None else -1)
    if q.descending:
        total = conn.execute("SELECT count(*) FROM docs WHERE db = ?", (db.id,)).fetchone()[0]
    else:
        total = conn.execute(
            "SELECT count(*) FROM docs WHERE db = ? AND seq > ?", (db.id, q.since)
        ).fetchone()[0]
    opts = DocOptions(conflicts=q.conflicts, attachments=q.attachments)
    rows: list[dict[str, Any]] = []
    last_seq = q.since if not q.descending else db.update_seq
    pending: int | None = None  # CouchDB's "offset": set by the rows sent, or where it stopped
    left = q.limit
    read = 0
    for doc_id, seq, rev, deleted, tree_json in conn.execute(sql, args):
        read += 1
        after = int(total) - read  # the changes still to read after this one
        stored = StoredDoc(doc_id, seq, rev, bool(deleted), revtree.loads(tree_json))
        doc: dict[str, Any] | None = None
        revs = revtree.leaves(stored.tree) if q.all_docs else [rev]
        if q.include_docs or q.selector is not None:
            found = render(conn, db.id, stored, rev, opts)
            doc = found.doc if found else None
        if q.selector is not None and q.all_docs:
            # CouchDB tries the selector on every leaf: the row lists those that pass (its doc
            # is still the winner).
            revs = _passing_leaves(conn, db.id, stored, revs, q.selector, opts)
            passes = bool(revs)
        else:
            passes = q.selector is None or (doc is not None and selector.matches(q.selector, doc))
        if left == 0:
            if pending is None:
                pending = after + 1 if passes else after
            if not passes:
                last_seq = seq
            return ChangesPage(rows, last_seq, pending)
        last_seq = seq
        if not passes:
            continue
        row: dict[str, Any] = {"seq": seq, "id": doc_id, "changes": [{"rev": r} for r in revs]}
        if deleted:
            row["deleted"] = True
        if q.include_docs:
            row["doc"] = doc
        rows.append(row)
        pending = after
        if left is not None:
            left -= 1
    end_pending = max(0, int(total) - read)
    if left == 0:  # the limit was spent by the last row there is: it stays where it was
        return ChangesPage(rows, last_seq, end_pending if pending is None else pending)
    if not q.descending:
        # Nothing further matches up to the snapshot's seq: let the client resume from there.
        last_seq = db.update_seq
    return ChangesPage(rows, last_seq, end_pending)


def _passing_leaves(
    conn: sqlite3.Connection,
    db: int,
    stored: StoredDoc,
    leaves: list[str],
    chosen: Mapping[str, Any],
    opts: DocOptions,
) -> list[str]:
    passing = []
    for leaf in leaves:
        found = render(conn, db, stored, leaf, opts)
        if found is not None and selector.matches(chosen, found.doc):
            passing.append(leaf)
    return passing


def current_seq(conn: sqlite3.Connection, name: str) -> int:
    return get_db(conn, name).update_seq


# The event of every database at once: what _db_updates feeds wait on.
ALL_DBS = "/all"


class FeedHub:
    """One ``asyncio.Event`` per database, set (and replaced) after every committed write.

    A feed takes the current event *before* it reads, so a write that commits between its read
    and its wait still wakes it: no lost wake-ups, no polling.
    """

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.closed = False

    def event(self, name: str) -> asyncio.Event:
        return self._events[name]

    def close(self) -> None:
        """Wake every feed for good (shutdown): they see ``closed`` and end their answers."""
        self.closed = True
        for name in list(self._events):
            self.notify(name)

    def notify(self, name: str) -> None:
        for key in (name, ALL_DBS):
            event = self._events.pop(key, None)
            if event is not None:
                event.set()

    def notify_all(self) -> None:
        """Another process wrote: which databases it touched is not known, so wake every feed."""
        for name in list(self._events):
            event = self._events.pop(name, None)
            if event is not None:
                event.set()


@dataclass(frozen=True)
class DbUpdatesPage:
    rows: list[dict[str, Any]]
    last_seq: int


def read_db_updates(conn: sqlite3.Connection, since: int, limit: int | None) -> DbUpdatesPage:
    """Databases created, updated or deleted after ``since``, each once at its latest event."""
    rows = [
        {"db_name": name, "type": kind, "seq": str(seq)}
        for name, kind, seq in conn.execute(
            "SELECT db_name, type, seq FROM db_updates WHERE seq > ? ORDER BY seq LIMIT ?",
            (since, -1 if limit is None else limit),
        )
    ]
    if rows:
        return DbUpdatesPage(rows, int(rows[-1]["seq"]))
    return DbUpdatesPage(rows, max(since, current_db_updates_seq(conn)))


def current_db_updates_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM db_updates").fetchone()[0])
