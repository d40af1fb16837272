"""The SQLite file, its schema, and the threads that may touch it.

One file for every database (``data_dir/store.sqlite3``) with a ``db`` column, not one file per
database: couchgate makes one small database per user per app, so a file each would mean
thousands of files, WAL pairs and open connections; one file gives one WAL, one fsync stream for
group-friendly commits, atomic database deletion, and nothing to scan at start-up. The cost — all
writes share one lock — is what a single-process embedded tier accepts anyway.

Writes run on one dedicated thread with one connection (SQLite allows one writer at a time, so a
queue in front of it is the honest shape), each call one ``BEGIN IMMEDIATE`` transaction committed
with ``synchronous=FULL`` before the HTTP answer goes out. Reads run on a small pool, each thread
with its own connection and each call inside one read transaction, i.e. one WAL snapshot. Nothing
runs on the event loop.

Two things run beside the requests, both as jobs on the writer thread: compaction (see
``compaction``) every ``AUTO_EVERY`` writes or hourly, and a poll of ``PRAGMA data_version`` on
the writer's own connection every ``WAKE_POLL_S``: it changes only when *another* connection
committed (another process, such as ``couchgate store compact`` or a second store on the same
directory), and then ``on_external_write`` wakes every live feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from . import compaction

P = ParamSpec("P")
WAKE_POLL_S = 0.1
WAL_LIMIT = 4 * 1024 * 1024
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dbs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    update_seq INTEGER NOT NULL DEFAULT 0,
    doc_count INTEGER NOT NULL DEFAULT 0,
    doc_del_count INTEGER NOT NULL DEFAULT 0,
    revs_limit INTEGER NOT NULL DEFAULT 1000,
    security TEXT NOT NULL,
    created_at REAL NOT NULL
);
-- One row per document: its current seq, winning rev and the whole revision tree (JSON).
CREATE TABLE IF NOT EXISTS docs (
    db INTEGER NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    rev TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    tree TEXT NOT NULL,
    PRIMARY KEY (db, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS docs_by_seq ON docs (db, seq);
-- Bodies of revisions (leaves and kept ancestors); body has no underscore fields.
CREATE TABLE IF NOT EXISTS revs (
    db INTEGER NOT NULL,
    doc TEXT NOT NULL,
    rev TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    body TEXT NOT NULL,
    atts TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS revs_key ON revs (db, doc, rev);
-- Attachment bodies, deduplicated per database by their md5 digest.
CREATE TABLE IF NOT EXISTS blobs (
    db INTEGER NOT NULL,
    digest TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS blobs_key ON blobs (db, digest);
-- _db_updates: each database's latest event, at a server-wide seq (as CouchDB's
-- _global_changes keeps one document per database).
CREATE TABLE IF NOT EXISTS db_updates (
    db_name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS db_updates_by_seq ON db_updates (seq);
CREATE TABLE IF NOT EXISTS local_docs (
    db INTEGER NOT NULL,
    id TEXT NOT NULL,
    rev INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (db, id)
) WITHOUT ROWID;
"""


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN ourselves), WAL, fully synchronous."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    # The WAL goes back to this size after each checkpoint instead of keeping its largest.
    conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


def compact_file(path: Path) -> compaction.Freed:
    """``couchgate store compact``: compact the store file at ``path`` from this process."""
    if not path.exists():
        raise FileNotFoundError(path)
    conn = connect(path)
    try:
        return compaction.compact_connection(conn, full=True)
    finally:
        conn.close()


class Storage:
    """The file plus its writer thread and reader pool; ``open()``/``close()`` from cleanup_ctx."""

    def __init__(
        self,
        path: Path,
        *,
        readers: int = 4,
        auto_compact_every: int = compaction.AUTO_EVERY,
        shared: bool = True,
    ) -> None:
        """``shared``: other processes may write the file and live feeds must hear of it
        (the data_version poll). A file one process keeps to itself (couchgate-sync's local
        store) skips that poll, so an idle process wakes only for the hourly compaction."""
        self.path = path
        self.shared = shared
        self.on_external_write: Callable[[], None] | None = None
        self.auto_compact_every = auto_compact_every
        self._writes = 0
        self._last_compaction = time.monotonic()
        self._compacting: asyncio.Task[compaction.Freed] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._data_version: int | None = None
        self._readers_count = readers
        # Threads exist only between open() and close(); placeholders spawn nothing until used.
        self._writer_pool = ThreadPoolExecutor(max_workers=1)
        self._reader_pool = ThreadPoolExecutor(max_workers=1)
        self._writer: sqlite3.Connection | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._reader_pool = ThreadPoolExecutor(
            max_workers=self._readers_count, thread_name_prefix="store-reader"
        )
        loop = asyncio.get_running_loop()
        self._writer = await loop.run_in_executor(self._writer_pool, self._open_writer)
        self._watcher = asyncio.create_task(self._watch())

    def _open_writer(self) -> sqlite3.Connection:
        conn = connect(self.path)
        # Only a new, empty file takes this: freed pages can then go back to the file system.
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.executescript(SCHEMA)
        self._data_version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        return conn

    def _external_write_seen(self) -> bool:
        """On the writer thread: whether another connection committed since the last look."""
        conn = self._writer
        if conn is None:
            return False
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        changed = version != self._data_version
        self._data_version = version
        return changed

    async def _watch(self) -> None:
        """Cross-process wake-ups and the hourly compaction, until close()."""
        loop = asyncio.get_running_loop()
        every = WAKE_POLL_S if self.shared else compaction.AUTO_PERIOD_S
        while self._writer is not None:
            await asyncio.sleep(every)
            try:
                changed = await loop.run_in_executor(self._writer_pool, self._external_write_seen)
            except (RuntimeError, sqlite3.Error):
                return  # closing
            if changed and self.on_external_write is not None:
                self.on_external_write()
            idle_for = time.monotonic() - self._last_compaction
            if self._writes and idle_for > compaction.AUTO_PERIOD_S:
                self.start_compaction()

    def start_compaction(self, db: int | None = None) -> asyncio.Task[compaction.Freed]:
        """Compact in the background (one at a time); the task says what was freed."""
        if self._compacting is None or self._compacting.done():
            self._writes = 0
            self._last_compaction = time.monotonic()
            self._compacting = asyncio.create_task(self.compact(db))
        return self._compacting

    async def compaction_finished(self) -> None:
        """Wait for the background compaction in progress, if any."""
        if self._compacting is not None:
            await asyncio.shield(self._compacting)

    @property
    def compacting(self) -> bool:
        return self._compacting is not None and not self._compacting.done()

    async def compact(self, db: int | None = None, *, full: bool = False) -> compaction.Freed:
        """Free old revision bodies and unreferenced blobs, one chunk per write transaction."""
        freed = compaction.Freed()
        position: tuple[int, str] | None = (0, "") if db is None else (db, "")
        while position is not None:
            position, count = await self.write(compaction.prune_chunk, position, db)
            freed.bodies += count
        freed.blobs = await self.write(compaction.free_blobs, db)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer_pool, self._give_back_space, full)
        return freed

    def _give_back_space(self, full: bool) -> None:
        conn = self._writer
        if conn is None:
            raise RuntimeError("storage is closed")
        compaction.give_back_space(conn, full=full)
        self._data_version = int(conn.execute("PRAGMA data_version").fetchone()[0])

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for task in (self._watcher, self._compacting):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        writer = self._writer
        self._writer = None
        if writer is not None:
            await loop.run_in_executor(self._writer_pool, writer.close)
        self._writer_pool.shutdown(wait=True)
        self._reader_pool.shutdown(wait=True)
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    async def write(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        """Run ``fn(conn, ...)`` in one immediate transaction on the writer thread."""
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._writer_pool, lambda: self._in_write(fn, args, kw))
        self._writes += 1
        if self.auto_compact_every and self._writes >= self.auto_compact_every:
            self.start_compaction()
        return result

    def _in_write(self, fn: Callable[..., T], args: tuple[object, ...], kw: dict[str, object]) -> T:
        conn = self._writer
        if conn is None:
            raise RuntimeError("storage is closed")
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn, *args, **kw)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def read(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kw: P.kwargs
    ) -> T:
        """Run ``fn(conn, ...)`` in one read transaction (a consistent snapshot) on a reader."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_pool, lambda: self._in_read(fn, args, kw))

    def _in_read(self, fn: Callable[..., T], args: tuple[object, ...], kw: dict[str, object]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        conn.execute("BEGIN")
        try:
            return fn(conn, *args, **kw)
        finally:
            conn.execute("COMMIT")
