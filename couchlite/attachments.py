"""Attachments: digests, blob storage, and how a written ``_attachments`` object is resolved.

Per revision the engine keeps only metadata ``{name: {content_type, digest, length, revpos}}``;
bodies live once per database in ``blobs`` keyed by CouchDB's digest (``md5-<base64>``), so a stub
carried from revision to revision costs nothing and two documents with the same bytes share them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import sqlite3
import zlib
from collections.abc import Mapping
from typing import Any

from .errors import BadRequest, MissingStub

AttMeta = dict[str, Any]
Atts = dict[str, AttMeta]


# CouchDB's default [attachments] compressible_types and compression_level.
_COMPRESSIBLE_PREFIXES = ("text/",)
_COMPRESSIBLE = frozenset({"application/javascript", "application/json", "application/xml"})
_LEVEL = 8


def digest_of(data: bytes) -> str:
    return "md5-" + base64.b64encode(hashlib.md5(data).digest()).decode()


def compressible(content_type: str) -> bool:
    base = content_type.split(";", 1)[0].strip()
    return base.startswith(_COMPRESSIBLE_PREFIXES) or base in _COMPRESSIBLE


def couch_digest(data: bytes, content_type: str) -> str:
    """The digest CouchDB gives these bytes: it stores compressible types gzipped (level 8)
    and digests what it stores, so replicas agree on digests only if we do the same."""
    if not compressible(content_type):
        return digest_of(data)
    gzip = zlib.compressobj(_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 8)
    return digest_of(gzip.compress(data) + gzip.flush())


def put_blob(conn: sqlite3.Connection, db: int, data: bytes, content_type: str) -> str:
    digest = couch_digest(data, content_type)
    conn.execute(
        "INSERT OR IGNORE INTO blobs (db, digest, data) VALUES (?, ?, ?)", (db, digest, data)
    )
    return digest


def get_blob(conn: sqlite3.Connection, db: int, digest: str) -> bytes | None:
    row = conn.execute(
        "SELECT data FROM blobs WHERE db = ? AND digest = ?", (db, digest)
    ).fetchone()
    return None if row is None else bytes(row[0])


def has_blob(conn: sqlite3.Connection, db: int, digest: str) -> bool:
    row = conn.execute("SELECT 1 FROM blobs WHERE db = ? AND digest = ?", (db, digest)).fetchone()
    return row is not None


def resolve(
    conn: sqlite3.Connection,
    db: int,
    doc_id: str,
    incoming: Mapping[str, Any],
    base: Mapping[str, AttMeta],
    new_pos: int,
    *,
    new_edits: bool,
    follows: Mapping[str, bytes],
) -> Atts:
    """Turn a written ``_attachments`` into stored metadata, storing new bodies as blobs.

    A stub keeps the base revision's attachment (CouchDB's ``missing_stub`` when there is none; a
    replicated stub may also name a digest this database already holds). Inline ``data`` and
    multipart ``follows`` bodies are stored and digested here: the digest is always ours, never
    the client's claim. ``revpos`` is the new position for an interactive edit and the sender's
    (0 if none) for a replicated revision, as in CouchDB.
    """
    resolved: Atts = {}
    for name, spec in incoming.items():
        if not isinstance(spec, Mapping):
            raise BadRequest(f"Invalid attachment {name!r}")
        content_type = str(spec.get("content_type") or "application/octet-stream")
        if spec.get("stub"):
            previous = base.get(name)
            if previous is None and not new_edits:
                previous = _replicated_stub(conn, db, spec)
            if previous is None:
                raise MissingStub(f"Invalid attachment stub in {doc_id} for {name}")
            resolved[name] = dict(previous)
            continue
        if "data" in spec:
            data = _decode(name, spec["data"])
        elif spec.get("follows"):
            if name not in follows:
                raise BadRequest(f"Attachment {name!r} is missing from the multipart body")
            data = follows[name]
        else:
            raise BadRequest(f"Invalid attachment {name!r}: no data, stub or follows")
        revpos = new_pos
        if not new_edits:
            # The sender's, and 0 when it names none (CouchDB 3.5.2 keeps what it is given).
            revpos = spec["revpos"] if type(spec.get("revpos")) is int else 0
        resolved[name] = {
            "content_type": content_type,
            "digest": put_blob(conn, db, data, content_type),
            "length": len(data),
            "revpos": revpos,
        }
    return resolved


def _replicated_stub(conn: sqlite3.Connection, db: int, spec: Mapping[str, Any]) -> AttMeta | None:
    digest = spec.get("digest")
    if not isinstance(digest, str) or not has_blob(conn, db, digest):
        return None
    length = spec.get("length")
    revpos = spec.get("revpos")
    return {
        "content_type": str(spec.get("content_type") or "application/octet-stream"),
        "digest": digest,
        "length": length if isinstance(length, int) else len(get_blob(conn, db, digest) or b""),
        "revpos": revpos if isinstance(revpos, int) else 1,
    }


def _decode(name: str, data: object) -> bytes:
    if not isinstance(data, str):
        raise BadRequest(f"Invalid attachment data for {name}")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"Invalid attachment data for {name}") from None


def stub(meta: AttMeta) -> AttMeta:
    return {
        "content_type": meta["content_type"],
        "revpos": meta["revpos"],
        "digest": meta["digest"],
        "length": meta["length"],
        "stub": True,
    }


def inline(meta: AttMeta, data: bytes) -> AttMeta:
    return {
        "content_type": meta["content_type"],
        "revpos": meta["revpos"],
        "digest": meta["digest"],
        "data": base64.b64encode(data).decode(),
    }


def follows_entry(meta: AttMeta) -> AttMeta:
    return {
        "content_type": meta["content_type"],
        "revpos": meta["revpos"],
        "digest": meta["digest"],
        "length": meta["length"],
        "follows": True,
    }
