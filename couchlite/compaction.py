"""Compaction: what CouchDB's ``_compact`` frees, in the store's one SQLite file.

CouchDB keeps the bodies of leaf revisions only once it compacts; the tree keeps every revision
id. Here the same: rows of ``revs`` whose revision is no longer a leaf are deleted, then every
blob no remaining revision names, then the freed pages go back to the file system.

The work is done in chunks of documents, each its own short write transaction on the writer
thread, so replication goes on between chunks; nothing of it runs on the event loop. The
background trigger (every ``AUTO_EVERY`` writes, and at least once an hour when there were any)
lives in ``storage.Storage``; ``couchgate store compact`` runs ``storage.compact_file`` from
another process against the same file, which SQLite's locking makes safe.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from . import revtree

CHUNK = 500
AUTO_EVERY = 2_000  # writes between background compactions
AUTO_PERIOD_S = 3600.0


@dataclass
class Freed:
    bodies: int = 0
    blobs: int = 0

    def add(self, other: Freed) -> None:
        self.bodies += other.bodies
        self.blobs += other.blobs


def prune_chunk(
    conn: sqlite3.Connection, after: tuple[int, str], db: int | None = None
) -> tuple[tuple[int, str] | None, int]:
    """Delete non-leaf bodies of up to ``CHUNK`` documents after ``after`` (``(db, id)``).

    Returns where to go on from (None when done) and how many bodies were deleted.
    """
    where = "(db, id) > (?, ?)" + ("" if db is None else " AND db = ?")
    args: list[object] = [after[0], after[1]] + ([] if db is None else [db])
    rows = conn.execute(
        f"SELECT db, id, tree FROM docs WHERE {where} ORDER BY db, id LIMIT ?",
        [*args, CHUNK],
    ).fetchall()
    deleted = 0
    for db_id, doc_id, tree_json in rows:
        leaves = revtree.leaves(revtree.loads(tree_json))
        marks = ",".join("?" * len(leaves))
        cursor = conn.execute(
            f"DELETE FROM revs WHERE db = ? AND doc = ? AND rev NOT IN ({marks})",
            [db_id, doc_id, *leaves],
        )
        deleted += cursor.rowcount
    if len(rows) < CHUNK:
        return None, deleted
    last = rows[-1]
    return (int(last[0]), str(last[1])), deleted


def free_blobs(conn: sqlite3.Connection, db: int | None = None) -> int:
    """Delete attachment bodies that no stored revision refers to any more."""
    scope = "" if db is None else " AND r.db = ?"
    conn.execute("DROP TABLE IF EXISTS temp.live_blobs")
    conn.execute(
        "CREATE TEMP TABLE live_blobs AS"
        " SELECT DISTINCT r.db AS db, json_extract(a.value, '$.digest') AS digest"
        " FROM revs r, json_each(r.atts) a WHERE r.atts IS NOT NULL" + scope,
        [] if db is None else [db],
    )
    conn.execute("CREATE INDEX temp.live_blobs_key ON live_blobs (db, digest)")
    cursor = conn.execute(
        "DELETE FROM blobs WHERE"
        + ("" if db is None else " db = ? AND")
        + " NOT EXISTS (SELECT 1 FROM temp.live_blobs l"
        " WHERE l.db = blobs.db AND l.digest = blobs.digest)",
        [] if db is None else [db],
    )
    conn.execute("DROP TABLE temp.live_blobs")
    return cursor.rowcount


def give_back_space(conn: sqlite3.Connection, *, full: bool) -> None:
    """Return freed pages to the file system (outside any transaction).

    ``full`` rewrites the file (``VACUUM``) and truncates the WAL, which waits for readers: what
    ``couchgate store compact`` does. The background run must never hold the writer up, so it
    only vacuums incrementally (where the file allows it) and checkpoints passively.
    """
    if full:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        conn.execute("PRAGMA incremental_vacuum").fetchall()  # it frees a page per step
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


def compact_connection(conn: sqlite3.Connection, *, full: bool = True) -> Freed:
    """Compact every database through ``conn`` (autocommit), chunk by chunk."""
    freed = Freed()
    position: tuple[int, str] | None = (0, "")
    while position is not None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            position, count = prune_chunk(conn, position)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        freed.bodies += count
    conn.execute("BEGIN IMMEDIATE")
    try:
        freed.blobs = free_blobs(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    give_back_space(conn, full=full)
    return freed
