"""Database-level reads: a database's info, the list of databases, its security object and its
revision limit (what CouchDB answers at ``/db``, ``/_all_dbs``, ``_security``, ``_revs_limit``)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .engine import get_db


def db_info(conn: sqlite3.Connection, name: str) -> dict[str, Any]:
    db = get_db(conn, name)
    external = conn.execute(
        "SELECT coalesce(sum(length(body)), 0) FROM revs WHERE db = ?", (db.id,)
    ).fetchone()[0]
    blobs = conn.execute(
        "SELECT coalesce(sum(length(data)), 0) FROM blobs WHERE db = ?", (db.id,)
    ).fetchone()[0]
    size = int(external) + int(blobs)
    return {
        "db_name": db.name,
        "purge_seq": 0,
        "update_seq": db.update_seq,
        "sizes": {"file": size, "external": size, "active": size},
        "props": {},
        "doc_del_count": db.doc_del_count,
        "doc_count": db.doc_count,
        "disk_format_version": 8,
        "compact_running": False,
        "cluster": {"q": 1, "n": 1, "w": 1, "r": 1},
        "instance_start_time": "0",
    }


def list_dbs(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT name FROM dbs ORDER BY name")]


def get_security(conn: sqlite3.Connection, name: str) -> Any:
    return json.loads(get_db(conn, name).security)


def get_revs_limit(conn: sqlite3.Connection, name: str) -> int:
    return get_db(conn, name).revs_limit
