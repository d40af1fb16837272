"""Large files as content-addressed sealed chunks, so an edit uploads only what changed.

A file over ``CHUNKED_ABOVE`` bytes is cut into fixed ``CHUNK_BYTES`` pieces; each is a document
of its own, ``{"kind": "chunk", "size"}`` with the piece as its sealed attachment, whose id is
the keyed id of the piece's SHA-256. The file's document then lists the chunk ids in order
(``"chunks": [...]``) instead of carrying the content. A chunk, once written, never changes, so
an edit of a few bytes writes one new chunk and a new list; identical pieces (in one file, in
two files, in two versions) are stored once. What the server learns: how many chunks a file
has, their sizes, and which chunks are shared (equal ids), never their content.

Fixed-size cutting keeps in-place edits and appends cheap; an insertion near the start of a
large file still rewrites every later chunk (content-defined cutting would not; not done).
Chunks are not deleted when no file refers to them any more (no garbage collection yet).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from encryption_plugin import Keyring, id_for, open_doc, seal_doc

KIND = "chunk"
CHUNK_BYTES = 4 * 1024 * 1024
CHUNKED_ABOVE = 8 * 1024 * 1024
CONTENT = "content"


def pieces(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)]


def chunk_id(piece: bytes, keyring: Keyring) -> str:
    return id_for("chunk\0" + hashlib.sha256(piece).hexdigest(), keyring)


def seal_chunk(doc_id: str, piece: bytes, keyring: Keyring) -> dict[str, Any]:
    return seal_doc(
        {
            "_id": doc_id,
            "kind": KIND,
            "size": len(piece),
            "_attachments": {
                CONTENT: {
                    "content_type": "application/octet-stream",
                    "data": base64.b64encode(piece).decode("ascii"),
                }
            },
        },
        keyring,
    )


def open_chunk(stored: dict[str, Any], keyring: Keyring) -> bytes | None:
    plain = open_doc(stored, keyring)
    att = (plain.get("_attachments") or {}).get(CONTENT)
    if plain.get("kind") != KIND or not isinstance(att, dict) or "data" not in att:
        return None
    return base64.b64decode(att["data"])
