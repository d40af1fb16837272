"""What the folder looked like when it last agreed with the local store, in SQLite.

One row per synced file: the document and revision it was written from or uploaded as, and its
size, mtime and SHA-256 then. A file whose size or mtime differs from its row was edited here;
a row without its file was deleted here; a file without a row is new. Every change to a row is
committed (WAL, ``synchronous=FULL``) after the file or the revision it records is durable, so a
kill -9 at any point leaves at worst a step to redo, never a step wrongly believed done.
Synchronous by design: callers run it in a worker thread.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from . import private
from .config import data_dir
from .versions import VersionRow

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    rev TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_by_doc ON files (doc_id);
CREATE INDEX IF NOT EXISTS files_by_lower ON files (lower(path));  -- case twins (ASCII)
-- Version documents held in the local store (see versions.py), to list them without opening.
CREATE TABLE IF NOT EXISTS versions (
    id TEXT PRIMARY KEY,
    of_doc TEXT NOT NULL,
    path TEXT NOT NULL,
    rev TEXT NOT NULL,
    mtime_ms INTEGER NOT NULL,
    device TEXT NOT NULL,
    size INTEGER NOT NULL,
    kept_until INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS versions_by_path ON versions (path, mtime_ms);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Synced empty folders (see folders.py): the folder document each was written from or sent as.
CREATE TABLE IF NOT EXISTS dirs (
    path TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    rev TEXT NOT NULL
);
-- Renames seen here or in documents (see renames.py): file document from_doc at from_rev moved
-- to to_doc; what history follows, and what an edit made at the old path is forwarded by.
CREATE TABLE IF NOT EXISTS moves (
    to_doc TEXT NOT NULL,
    to_path TEXT NOT NULL,
    from_doc TEXT NOT NULL,
    from_rev TEXT NOT NULL,
    from_path TEXT NOT NULL,
    PRIMARY KEY (to_doc, from_doc, from_rev)
);
CREATE INDEX IF NOT EXISTS moves_from ON moves (from_doc);
"""


class Meta(StrEnum):
    """The keys of the ``meta`` table, each with the one module that writes it."""

    APPLIED_SEQ = "applied_seq"  # apply: the local store's seq the folder is in step with
    PENDING = "pending"  # apply: documents to try again (JSON list of ids)
    REMOTE_SEQ = "remote_seq"  # cycle: the server's seq the last pull reached
    LAST_SYNC = "last_sync"  # cycle: when a cycle with the server last ended (s)
    CHUNKS_SURVEYED_AT = "chunks_surveyed_at"  # chunk_gc: when the last survey ran (ms)
    UNNEEDED_CHUNKS = "unneeded_chunks"  # chunk_gc: {chunk id: [winning rev, first seen (ms)]}
    FAILED = "failed"  # failures: documents this device cannot write {doc id: Failed}
    WAITING = "waiting"  # failures: what the server refused at the last push (see Waiting)
    HELD_DELETIONS = "held_deletions"  # deletions: paths whose deletion is held (JSON list)
    CONFIRMED_DELETIONS = "confirmed_deletions"  # deletions: held paths the person confirmed


@dataclass(frozen=True)
class FileRow:
    path: str
    doc_id: str
    rev: str
    size: int
    mtime_ns: int
    sha: str


@dataclass(frozen=True)
class DirRow:
    path: str
    doc_id: str
    rev: str


@dataclass(frozen=True)
class Move:
    to_doc: str
    to_path: str
    from_doc: str
    from_rev: str
    from_path: str


class State:
    def __init__(self, path: Path) -> None:
        private.database(path, data_dir())
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def files(self) -> dict[str, FileRow]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM files").fetchall()
        return {row[0]: FileRow(*row) for row in rows}

    def files_under(self, tops: list[str]) -> dict[str, FileRow]:
        """The rows at each of ``tops`` or inside it (a partial scan's, see ``changes``): one
        range of the primary key each, so a save in a folder of 100,000 reads a row or two."""
        found: dict[str, FileRow] = {}
        with self._lock:
            for top in tops:
                # Paths inside ``top`` are those from "top/" up to "top0" ("0" follows "/").
                rows = self._conn.execute(
                    "SELECT * FROM files WHERE path = ? OR (path >= ? AND path < ?)",
                    (top, top + "/", top + "0"),
                ).fetchall()
                found.update((row[0], FileRow(*row)) for row in rows)
        return found

    def count_files(self) -> int:
        with self._lock:
            (count,) = self._conn.execute("SELECT count(*) FROM files").fetchone()
        return int(count)

    def by_doc(self, doc_id: str) -> FileRow | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM files WHERE doc_id = ?", (doc_id,)).fetchone()
        return FileRow(*row) if row else None

    def by_docs(self, doc_ids: list[str]) -> dict[str, FileRow]:
        """:meth:`by_doc` of each document that has a row, in one call (a page of them)."""
        found: dict[str, FileRow] = {}
        with self._lock:
            for start in range(0, len(doc_ids), 500):
                part = doc_ids[start : start + 500]
                marks = ",".join("?" * len(part))
                query = f"SELECT * FROM files WHERE doc_id IN ({marks})"
                for row in self._conn.execute(query, part).fetchall():
                    found.setdefault(row[1], FileRow(*row))
        return found

    def moved_from(self, doc_ids: list[str]) -> set[str]:
        """Which of ``doc_ids`` a move starts from (see :meth:`moves_from`), in one call."""
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(doc_ids), 500):
                part = doc_ids[start : start + 500]
                marks = ",".join("?" * len(part))
                query = f"SELECT from_doc FROM moves WHERE from_doc IN ({marks})"
                found.update(str(row[0]) for row in self._conn.execute(query, part).fetchall())
        return found

    def get(self, path: str) -> FileRow | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM files WHERE path = ?", (path,)).fetchone()
        return FileRow(*row) if row else None

    def put(self, rows: list[FileRow]) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                [(r.path, r.doc_id, r.rev, r.size, r.mtime_ns, r.sha) for r in rows],
            )
            self._conn.execute("COMMIT")

    def drop(self, paths: list[str]) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in paths])
            self._conn.execute("COMMIT")

    def moved(self, renamed: list[tuple[str, FileRow, Move]]) -> None:
        """Files renamed: each (old path, new row, move) in one commit, old rows gone."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            for old_path, row, move in renamed:
                self._conn.execute("DELETE FROM files WHERE path = ?", (old_path,))
                self._conn.execute(
                    "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                    (row.path, row.doc_id, row.rev, row.size, row.mtime_ns, row.sha),
                )
                self._put_move(move)
            self._conn.execute("COMMIT")

    def by_folded(self, path: str) -> FileRow | None:
        """A row of another path equal to ``path`` but for case (``casefold``)."""
        folded = path.casefold()
        # SQLite's lower() folds ASCII only (and is indexed): other names are compared here.
        query = "SELECT * FROM files WHERE " + (
            "lower(path) = lower(?)" if path.isascii() else "length(path) = length(?)"
        )
        with self._lock:
            rows = self._conn.execute(query, (path,)).fetchall()
        found = [FileRow(*r) for r in rows if r[0] != path and str(r[0]).casefold() == folded]
        return found[0] if found else None

    def by_folded_dir(self, dir_path: str) -> FileRow | None:
        """A row of a file under a folder whose path equals ``dir_path`` but for case, and not
        under ``dir_path`` itself (``Notes/a.md`` for ``notes``)."""
        prefix = dir_path + "/"
        n = len(prefix)
        # As in by_folded: SQLite's lower() folds ASCII only; other names are compared here.
        if dir_path.isascii():
            query = "SELECT * FROM files WHERE lower(substr(path, 1, ?)) = lower(?) AND "
            args: tuple[object, ...] = (n, prefix, n, prefix)
        else:
            query, args = "SELECT * FROM files WHERE ", (n, prefix)
        with self._lock:
            rows = self._conn.execute(query + "substr(path, 1, ?) != ?", args).fetchall()
        depth = prefix.count("/")
        for r in rows:
            head = "/".join(str(r[0]).split("/")[:depth])
            if head != dir_path and head.casefold() == dir_path.casefold():
                return FileRow(*r)
        return None

    def put_move(self, move: Move) -> None:
        with self._lock:
            self._put_move(move)

    def _put_move(self, move: Move) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO moves VALUES (?, ?, ?, ?, ?)",
            (move.to_doc, move.to_path, move.from_doc, move.from_rev, move.from_path),
        )

    def moves_from(self, doc_id: str) -> list[Move]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM moves WHERE from_doc = ?", (doc_id,)
            ).fetchall()
        return [Move(*row) for row in rows]

    def moves_to(self, path: str) -> list[Move]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM moves WHERE to_path = ?", (path,)).fetchall()
        return [Move(*row) for row in rows]

    def dirs(self) -> dict[str, DirRow]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM dirs").fetchall()
        return {row[0]: DirRow(*row) for row in rows}

    def dir_by_doc(self, doc_id: str) -> DirRow | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM dirs WHERE doc_id = ?", (doc_id,)).fetchone()
        return DirRow(*row) if row else None

    def put_dir(self, row: DirRow) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO dirs VALUES (?, ?, ?)", (row.path, row.doc_id, row.rev)
            )

    def drop_dir(self, path: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM dirs WHERE path = ?", (path,))

    def put_version(self, row: VersionRow) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.id,
                    row.of_doc,
                    row.path,
                    row.rev,
                    row.mtime_ms,
                    row.origin,
                    row.size,
                    row.kept_until,
                ),
            )

    def drop_version(self, version_id: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM versions WHERE id = ?", (version_id,))

    def versions_of(self, path: str) -> list[VersionRow]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM versions WHERE path = ? ORDER BY mtime_ms, rev", (path,)
            ).fetchall()
        return [VersionRow(*row) for row in rows]

    def all_versions(self) -> list[VersionRow]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM versions ORDER BY path, mtime_ms").fetchall()
        return [VersionRow(*row) for row in rows]

    def expired_versions(self, now_ms: int) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id FROM versions WHERE kept_until < ?", (now_ms,)
            ).fetchall()
        return [str(row[0]) for row in rows]

    def meta(self, key: Meta, default: str = "") -> str:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def set_meta(self, key: Meta, value: str) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
