"""Large files as content-addressed sealed chunks, so an edit uploads only what changed.

A file over ``CHUNKED_ABOVE`` bytes is cut into pieces where its *content* says (FastCDC 2020,
the maintained ``pyfastcdc``); each piece is a document of its own, ``{"kind": "chunk",
"size"}`` with the piece as its sealed attachment, whose id is the keyed id of the piece's
SHA-256. The file's document then lists the chunk ids in order (``"chunks": [...]``) instead of
carrying the content. A chunk, once written, never changes; identical pieces (in one file, in
two files, in two versions) are stored once.

Why content-defined cuts: a cut point is where a rolling hash of the last few dozen bytes meets
a condition, so inserting or deleting bytes moves the cuts near the edit, and within a chunk or
two the cuts fall back into step; the pieces after that are the same pieces at new offsets,
already stored. (Fixed offsets made an insertion near the start of a
file rewrite every later piece.) The sizes, for notes vaults, whose large files are PDFs, images
and recordings of a few to a few hundred MiB, edited in place or appended to:

* average 1 MiB (``AVG_BYTES``; FastCDC's real mean is about avg + min, 1.25 MiB): an edit
  uploads about a MiB, and a 1 GiB file is under a thousand documents (each costs a row in the
  document quota, in ``_changes`` and in every replication);
* minimum 256 KiB: no swarm of tiny documents, and cutting skips that much after each cut;
* maximum 4 MiB: one chunk sealed as JSON stays well under a push request's 8 MiB
  (``replicate.MAX_BODY_BYTES``) and far under the 16 MiB sealed-attachment limit.

What the server learns: how many chunks a file has, their sizes, and which chunks are shared
(equal ids), never their content. The cut points are keyed too (the gear table is seeded from
a subkey of the app key, ``derivations.cutter_seed``, which no document id reveals), so the
sequence of chunk sizes is no public fingerprint of a known file.

Documents written with the old fixed 4 MiB cuts still open: a file's chunk list is explicit and
ids are those of the pieces' hashes whatever cut them; their first edit re-cuts the file.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pyfastcdc import FastCDC

from encryption_plugin import Keyring, derivations, open_doc, seal_doc

KIND = "chunk"
MIN_BYTES = 256 * 1024
AVG_BYTES = 1024 * 1024
MAX_BYTES = 4 * 1024 * 1024
# Every text note up to notes.MAX_INLINE_TEXT stays inline (the demo web app reads its "text").
CHUNKED_ABOVE = 4 * 1024 * 1024
CONTENT = "content"


@dataclass(frozen=True)
class Cut:
    offset: int
    length: int
    id: str


def cuts(data: bytes, keyring: Keyring) -> list[Cut]:
    """Where ``data`` is cut, in order, with each piece's chunk id (CPU-bound: call it in a
    worker thread); the pieces themselves are sliced one at a time by :func:`piece`."""
    seed = derivations.cutter_seed(keyring)
    cutter = FastCDC(AVG_BYTES, min_size=MIN_BYTES, max_size=MAX_BYTES, seed=seed)
    return [Cut(c.offset, c.length, chunk_id(c.data, keyring)) for c in cutter.cut_buf(data)]


def piece(data: bytes, cut: Cut) -> bytes:
    return data[cut.offset : cut.offset + cut.length]


def pieces(data: bytes, keyring: Keyring) -> Iterator[bytes]:
    """``data`` cut where its content says, in order; joined, they are ``data`` again."""
    for cut in cuts(data, keyring):
        yield piece(data, cut)


def chunk_id(content: bytes | memoryview, keyring: Keyring) -> str:
    return derivations.chunk_id(content, keyring)


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
