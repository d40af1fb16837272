"""A file as one sealed ``ep1`` document, and back: the note format (docs/notes-format.md).

Plaintext body of a file document (all of it inside the envelope)::

    {"path": "Daily/2026-12-01.md",     # NFC, "/"-separated, relative to the folder
     "text": "...",                     # text files: the content, as the demo web app's notes
     "created": "2026-12-01T09:00:00.000Z", "mtime": 1764579600000,   # ms since the epoch
     "size": 123, "device": "laptop"}
    + "_attachments": {"content": {...}}  # binary files instead of "text" (sealed attachment)

The document id is ``derivations.path_id(path)``: a keyed MAC, so the server learns neither
names nor folder structure, and two devices creating the same path meet in one document (whose
conflicts the resolver settles). A note made in the demo web app has no ``path``; it appears as
``<its id>.md`` (see :func:`path_of`) and edits of that file go back to the same document.
"""

from __future__ import annotations

import base64
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from encryption_plugin import MAX_ATTACHMENT_BYTES, Keyring, derivations, open_doc, seal_doc

CONTENT = "content"
FOLDER = "folder"  # the kind of an empty folder's document (see folders)
# Where each kind keeps text: files in "text", as the demo web app's notes do; versions elsewhere,
# so that an app listing notes by their "text" (the demo does) does not list old versions too.
TEXT_FIELD = {"file": "text", "version": "content"}
MAX_INLINE_TEXT = 4 * 1024 * 1024
MAX_UNCHUNKED_BYTES = MAX_ATTACHMENT_BYTES  # one sealed attachment
MAX_FILE_BYTES = 1024 * 1024 * 1024  # a file is read whole into memory to be synced


@dataclass(frozen=True)
class Note:
    """What the folder needs of one revision: where it goes and its exact bytes."""

    path: str
    data: bytes
    mtime_ms: int
    origin: str  # the name of the device that wrote this version
    created: str
    is_text: bool
    kind: str = "file"
    meta: Mapping[str, Any] = field(default_factory=dict)  # what a kind adds (see versions)
    chunks: tuple[str, ...] = ()  # a large file's chunk ids (see chunks); data is filled in then


# This system's own path separators other than "/" (Windows' backslash).
_SEPARATORS = tuple(sep for sep in (os.sep, os.altsep) if sep and sep != "/")


def normalize(path: str) -> str:
    """The form a path is synced under: NFC, ``/``-separated (macOS writes NFD names). Only
    this system's own separators become ``/``: on Linux and macOS a backslash is a character of
    a name, and syncs as one (a Windows device lists such a file as a failed item)."""
    for sep in _SEPARATORS:
        path = path.replace(sep, "/")
    return unicodedata.normalize("NFC", path)


def doc_id_for(path: str, keyring: Keyring) -> str:
    return derivations.path_id(normalize(path), keyring)


def as_text(data: bytes) -> str | None:
    """The content as text when it round-trips to the very same bytes, else None (binary)."""
    if b"\0" in data or len(data) > MAX_INLINE_TEXT:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{ms % 1000:03d}Z"
    )


def seal_note(
    doc_id: str,
    path: str,
    data: bytes,
    *,
    mtime_ms: int,
    origin: str,
    created: str | None,
    keyring: Keyring,
    extra: Mapping[str, Any] | None = None,
    chunks: Sequence[str] = (),
) -> dict[str, Any]:
    """The sealed document for one version of a file (``extra``: fields of another kind;
    ``chunks``: the content is those chunk documents, ``data`` is then only measured)."""
    body: dict[str, Any] = {
        **(extra or {}),
        "_id": doc_id,
        "path": normalize(path),
        "created": created or iso(mtime_ms),
        "mtime": mtime_ms,
        "size": len(data),
        "device": origin,
    }
    text = None if chunks else as_text(data)
    if chunks:
        body["chunks"] = list(chunks)
    elif text is not None:
        body[TEXT_FIELD.get(str(body.get("kind", "file")), "text")] = text
    else:
        body["_attachments"] = {
            CONTENT: {
                "content_type": "application/octet-stream",
                "data": base64.b64encode(data).decode("ascii"),
            }
        }
    return seal_doc(body, keyring)


_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def path_of(doc_id: str, body: dict[str, Any]) -> str:
    """Where a document's file lives: its ``path``, or for a note made without one (the demo
    web app's) a file name made from its id."""
    path = body.get("path")
    if isinstance(path, str) and path:
        return normalize(path)
    return _UNSAFE.sub("-", doc_id).lstrip(".") + ".md"


KNOWN = frozenset(
    {"path", "text", "content", "created", "mtime", "size", "device", "kind", "chunks"}
)


def open_note(
    stored: dict[str, Any], keyring: Keyring, *, kind: str | None = "file"
) -> Note | None:
    """A stored revision as a note of ``kind`` (None: of any kind), or None when it is not one
    (a tombstone, another kind). A document without ``kind`` is a file (the demo's notes)."""
    if stored.get("_deleted"):
        return None
    plain = open_doc(stored, keyring)
    found = plain.get("kind", "file")
    if not isinstance(found, str) or (kind is not None and found != kind):
        return None
    text = plain.get(TEXT_FIELD.get(found, "text"))
    listed = plain.get("chunks")
    chunk_ids: tuple[str, ...] = ()
    if found == FOLDER:  # an empty folder (see folders): nothing but its path
        data, is_text = b"", False
    elif isinstance(listed, list) and all(isinstance(c, str) for c in listed):
        chunk_ids = tuple(listed)
        data, is_text = b"", False
    elif isinstance(text, str):
        data = text.encode("utf-8")
        is_text = True
    else:
        att = (plain.get("_attachments") or {}).get(CONTENT)
        if not isinstance(att, dict) or not isinstance(att.get("data"), str):
            return None
        data = base64.b64decode(att["data"])
        is_text = False
    created = plain.get("created") if isinstance(plain.get("created"), str) else ""
    mtime = plain.get("mtime")
    mtime_ms = mtime if isinstance(mtime, int) else _ms_of(str(created))
    origin = plain.get("device") if isinstance(plain.get("device"), str) else "Browser"
    meta = {k: v for k, v in plain.items() if k not in KNOWN and not k.startswith("_")}
    return Note(
        path_of(str(stored["_id"]), plain),
        data,
        mtime_ms,
        str(origin),
        str(created),
        is_text,
        found,
        meta,
        chunk_ids,
    )


def _ms_of(created: str) -> int:
    try:
        return int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0
