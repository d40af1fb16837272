"""``_all_docs`` and ``_local_docs``: documents by id, over a range or for a list of keys.

Each function runs on a reader connection inside one read transaction (see ``reads``).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from . import revtree
from .engine import Db, get_db
from .reads import DocOptions, StoredDoc, load_doc, render


@dataclass(frozen=True)
class RangeQuery:
    """``_all_docs`` parameters after parsing (keys wins over the range, as in CouchDB)."""

    keys: list[Any] | None = None
    start: str | None = None
    end: str | None = None
    inclusive_end: bool = True
    descending: bool = False
    limit: int | None = None
    skip: int = 0
    include_docs: bool = False
    conflicts: bool = False
    attachments: bool = False  # with include_docs: bodies inline, as CouchDB sends them
    update_seq: bool = False


def all_docs(conn: sqlite3.Connection, name: str, q: RangeQuery) -> dict[str, Any]:
    db = get_db(conn, name)
    opts = DocOptions(conflicts=q.conflicts, attachments=q.attachments)
    rows: list[dict[str, Any]] = []
    offset: int | None
    if q.keys is not None:
        keys = q.keys[::-1] if q.descending else q.keys
        for key in keys[q.skip :]:
            if q.limit is not None and len(rows) >= q.limit:
                break
            rows.append(_key_row(conn, db, key, q, opts))
        offset = None  # CouchDB has no offset for a keys query
    else:
        for stored in _range(conn, db.id, q):
            row: dict[str, Any] = {
                "id": stored.id,
                "key": stored.id,
                "value": {"rev": stored.winner},
            }
            if q.include_docs:
                found = render(conn, db.id, stored, stored.winner, opts)
                row["doc"] = found.doc if found else None
            rows.append(row)
        offset = _offset(conn, db, q)
    out: dict[str, Any] = {"total_rows": db.doc_count, "offset": offset, "rows": rows}
    if q.update_seq:
        # CouchDB has no update_seq for a keys query either (it answers null).
        out["update_seq"] = db.update_seq if q.keys is None else None
    return out


def _key_row(
    conn: sqlite3.Connection, db: Db, key: Any, q: RangeQuery, opts: DocOptions
) -> dict[str, Any]:
    stored = load_doc(conn, db.id, key) if isinstance(key, str) else None
    if stored is None:
        return {"key": key, "error": "not_found"}
    value: dict[str, Any] = {"rev": stored.winner}
    row: dict[str, Any] = {"id": stored.id, "key": key, "value": value}
    if stored.deleted:
        value["deleted"] = True
        if q.include_docs:
            row["doc"] = None
    elif q.include_docs:
        found = render(conn, db.id, stored, stored.winner, opts)
        row["doc"] = found.doc if found else None
    return row


def _range(conn: sqlite3.Connection, db: int, q: RangeQuery) -> list[StoredDoc]:
    where, args = _range_bounds(db, q)
    order = "DESC" if q.descending else "ASC"
    sql = (
        f"SELECT id, seq, rev, deleted, tree FROM docs WHERE {' AND '.join(where)}"
        f" ORDER BY id {order} LIMIT ? OFFSET ?"
    )
    args.extend([-1 if q.limit is None else q.limit, q.skip])
    return [
        StoredDoc(r[0], r[1], r[2], bool(r[3]), revtree.loads(r[4]))
        for r in conn.execute(sql, args)
    ]


def _range_bounds(db: int, q: RangeQuery) -> tuple[list[str], list[Any]]:
    """SQL conditions for start/end: ``startkey`` is the high bound when descending."""
    where: list[str] = ["db = ?", "deleted = 0"]
    args: list[Any] = [db]
    if q.start is not None:
        where.append("id <= ?" if q.descending else "id >= ?")
        args.append(q.start)
    if q.end is not None:
        if q.descending:
            where.append("id >= ?" if q.inclusive_end else "id > ?")
        else:
            where.append("id <= ?" if q.inclusive_end else "id < ?")
        args.append(q.end)
    return where, args


def _offset(conn: sqlite3.Connection, db: Db, q: RangeQuery) -> int:
    """Rows before the first one returned, in the direction of reading, skipped ones included,
    and never more than ``total_rows`` (CouchDB's ``offset``: a skip past the end is the end)."""
    before = 0
    if q.start is not None:
        op = ">" if q.descending else "<"
        before = conn.execute(
            f"SELECT count(*) FROM docs WHERE db = ? AND deleted = 0 AND id {op} ?",
            (db.id, q.start),
        ).fetchone()[0]
    return min(int(before) + q.skip, db.doc_count)


def local_docs(conn: sqlite3.Connection, name: str, q: RangeQuery) -> dict[str, Any]:
    """``_local_docs``: CouchDB lists them without totals (``total_rows`` and ``offset`` null)."""
    db = get_db(conn, name)
    order = "DESC" if q.descending else "ASC"
    rows = []
    for doc_id, rev, body in conn.execute(
        f"SELECT id, rev, body FROM local_docs WHERE db = ? ORDER BY id {order} LIMIT ? OFFSET ?",
        (db.id, -1 if q.limit is None else q.limit, q.skip),
    ):
        row: dict[str, Any] = {"id": doc_id, "key": doc_id, "value": {"rev": f"0-{rev}"}}
        if q.include_docs:
            row["doc"] = {"_id": doc_id, "_rev": f"0-{rev}", **json.loads(body)}
        rows.append(row)
    return {"total_rows": None, "offset": None, "rows": rows}
