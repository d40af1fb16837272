"""Checks on what a user writes, before it reaches the upstream.

A refused document in ``_bulk_docs`` is refused alone, as CouchDB reports a failed validation:
the others are written, and the answer carries ``{"id", "error", "reason"}`` in its place.

With encryption required for an app (the default; see ``plaintext_apps``), a document may carry
nothing but ``_``-fields and one ``e2e`` envelope (docs/encryption-format.md), so a misconfigured
client cannot leave plaintext on the server. The gateway holds no keys: it checks the *shape* of
the envelope and never tries to open it. Three kinds of document pass without an envelope: bare
tombstones (nothing to hide), ``_local/*`` documents held to what a replication checkpoint holds
(see :func:`check_checkpoint`) and the passphrase-wrapped key record ``ep1-keywrap-<kid>``, which
is ciphertext of its own and is held to its exact schema. Attachments are held to the shape the
plugins store them in (docs/encryption-format.md, "Attachments"): a random name,
``application/octet-stream``, and at least a nonce and a tag of bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from gateway.errors import BadRequest, CouchError, Forbidden, TooLarge
from gateway.replication import request_shapes

DESIGN_REFUSED = "design documents are not available through couchgate"
NOT_ENCRYPTED = "document is not encrypted"
ATTACHMENT_NOT_ENCRYPTED = "attachment is not encrypted"
BAD_WRAP = "not a valid ep1w key wrap record"

LOCAL_DOC_LIMIT = 64 * 1024
"""Checkpoints are small and hold no user data; the cap keeps ``_local`` documents from being a
place to keep data past the quota and the encryption policy, on every route that writes them."""

ENVELOPE_FIELD = "e2e"
LOCAL_PREFIX = "_local/"
KEYWRAP_PREFIX = "ep1-keywrap-"

# ep1 sizes (docs/encryption-format.md): an 8-byte key id, a 24-byte XChaCha20 nonce, a 16-byte
# Poly1305 tag.
KID_BYTES = 8
NONCE_BYTES = 24
TAG_BYTES = 16
KEY_BYTES = 32
SALT_BYTES = 16
# What clients accept when unwrapping (encryption_plugin.wrap): a record no client would open,
# or one that makes a passphrase cheap to guess, is not worth storing.
WRAP_MIN_OPS, WRAP_MAX_OPS = 3, 16
WRAP_MIN_MEM, WRAP_MAX_MEM = 64 * 1024 * 1024, 1024 * 1024 * 1024
WRAP_FIELDS = frozenset({"v", "kdf", "ops", "mem", "salt", "kid", "n", "c"})
# A sealed attachment (encryption_plugin.attachments, js/src/envelope.js): stored under 16 random
# bytes in lower-case hex, typed octet-stream, holding ``nonce ‖ ct ‖ tag``.
SEALED_ATTACHMENT_TYPE = "application/octet-stream"
SEALED_ATTACHMENT_MIN_BYTES = NONCE_BYTES + TAG_BYTES

_STORED_NAME = re.compile(r"[0-9a-f]{32}")
_HASH = re.compile(r"[0-9a-f]{32}")
_REVISION = re.compile(r"[1-9][0-9]{0,15}-[0-9a-f]{32}")
REVISIONS_MAX = 1000
"""CouchDB's default ``revs_limit``: no honest replication sends a longer history."""

_B64U = re.compile(r"[A-Za-z0-9_-]*")


def check_doc(
    doc_id: str, doc: Any, *, encryption_required: bool = False, multipart: bool = False
) -> None:
    """Raise the refusal for one document about to be written, if any (``multipart``: the
    document part of a multipart body, whose attachments may follow it)."""
    if not isinstance(doc, dict):
        raise BadRequest("Document must be a JSON object")
    if doc_id.startswith("_design/"):
        raise Forbidden(DESIGN_REFUSED)
    if doc_id.startswith(LOCAL_PREFIX) and local_size(doc) > LOCAL_DOC_LIMIT:
        raise TooLarge(f"a _local document may hold at most {LOCAL_DOC_LIMIT} bytes")
    if doc_id.startswith(LOCAL_PREFIX) and "_rev" in doc:
        check_local_rev(doc["_rev"])
    if encryption_required:
        check_sealed(doc_id, doc)
    if "_attachments" in doc and not doc_id.startswith(LOCAL_PREFIX):
        request_shapes.check_attachments(doc_id, doc["_attachments"], multipart=multipart)


_LOCAL_REV = re.compile(r"\+?0+-[+-]?[0-9]+")
"""A ``_local`` document's revision: ``0-<integer>`` (CouchDB reads the part after the first
``-`` as an Erlang integer, so ``0-+1`` and ``0-007`` are revisions too)."""
BAD_REV = "Invalid rev format"


def check_local_rev(rev: object) -> None:
    """Refuse a ``_local`` revision CouchDB cannot read. It answers 500 to a well-formed revision
    that is not ``0-<integer>`` (``1-abc``, ``0-abc``: its local-document code throws), so the
    refusal happens here, with the 400 its revision parser gives the other malformed ones."""
    if not isinstance(rev, str) or not _LOCAL_REV.fullmatch(rev):
        raise BadRequest(BAD_REV)


def local_size(doc: dict[str, Any]) -> int:
    """A ``_local`` document's size as JSON, however the client spaced it."""
    return len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())


def local_sizes(docs: list[Any]) -> dict[str, int]:
    """The ``_local`` documents among ``docs``, by id, with their sizes."""
    return {
        doc_id_of(doc): local_size(doc) for doc in docs if doc_id_of(doc).startswith(LOCAL_PREFIX)
    }


def check_sealed(doc_id: str, doc: dict[str, Any]) -> None:
    """Refuse a document that would store anything readable (encryption = required)."""
    if doc_id.startswith(LOCAL_PREFIX):
        check_checkpoint(doc)
        return
    check_revisions(doc)
    body = [name for name in doc if not name.startswith("_")]
    if not body and doc.get("_deleted") is True and not doc.get("_attachments"):
        return  # a bare tombstone, like DELETE: there is nothing in it to encrypt
    if doc_id.startswith(KEYWRAP_PREFIX):
        check_wrap_record(doc_id[len(KEYWRAP_PREFIX) :], doc)
    elif body != [ENVELOPE_FIELD] or not looks_like_envelope(doc[ENVELOPE_FIELD]):
        raise Forbidden(NOT_ENCRYPTED)
    if "_attachments" in doc:
        check_sealed_attachments(doc["_attachments"])


NOT_A_CHECKPOINT = "a _local document of an encrypted app may only hold a replication checkpoint"
# What the two replicators write (PouchDB's pouchdb-checkpointer; CouchDB's scheduler job, seen
# from CouchDB 3.5.2): the fields, their values' shapes, and the history they keep (PouchDB 5,
# CouchDB 50).
CHECKPOINT_HISTORY_MAX = 50
SEQ_MAX_CHARS = 4096
_CHECKPOINT_SPECIAL = frozenset({"_id", "_rev", "_deleted"})
_SESSION = re.compile(r"[A-Za-z0-9-]{1,64}")
_SEQ = re.compile(r"[0-9]+(-[A-Za-z0-9_-]*)?")
_WORD = re.compile(r"[a-z0-9_-]{1,32}")
_HTTP_DATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")
_COUNT_FIELDS = (
    "missing_checked",
    "missing_found",
    "docs_read",
    "docs_written",
    "doc_write_failures",
    "bulk_get_docs",
    "bulk_get_attempts",
)


def _is_seq(value: object) -> bool:
    if type(value) is int:
        return value >= 0
    return isinstance(value, str) and len(value) <= SEQ_MAX_CHARS and bool(_SEQ.fullmatch(value))


def _is_count(value: object) -> bool:
    return type(value) is int and 0 <= value < 2**53


def _string(pattern: re.Pattern[str]) -> Any:
    return lambda value: isinstance(value, str) and pattern.fullmatch(value) is not None


_CHECKPOINT_FIELDS: dict[str, Any] = {
    "session_id": _string(_SESSION),
    "source_last_seq": _is_seq,
    "last_seq": _is_seq,
    "replication_id_version": _is_count,
    "version": _is_count,
    "replicator": _string(_WORD),
}
_HISTORY_FIELDS: dict[str, Any] = {
    "session_id": _string(_SESSION),
    "last_seq": _is_seq,
    "start_last_seq": _is_seq,
    "end_last_seq": _is_seq,
    "recorded_seq": _is_seq,
    "start_time": _string(_HTTP_DATE),
    "end_time": _string(_HTTP_DATE),
    **dict.fromkeys(_COUNT_FIELDS, _is_count),
}


def check_checkpoint(doc: dict[str, Any]) -> None:
    """Refuse a ``_local`` document that holds anything but a replication checkpoint.

    Every field must be one of the checkpoint fields with a value of its shape (sequences,
    session ids, counters, dates), so nothing readable can be parked beside a checkpoint.
    """
    for name, value in doc.items():
        if name in _CHECKPOINT_SPECIAL:
            continue
        if name == "history":
            if not isinstance(value, list) or len(value) > CHECKPOINT_HISTORY_MAX:
                raise Forbidden(f"{NOT_A_CHECKPOINT}: history must be a list of at most 50")
            for entry in value:
                _check_fields(entry, _HISTORY_FIELDS)
        elif name not in _CHECKPOINT_FIELDS or not _CHECKPOINT_FIELDS[name](value):
            raise Forbidden(f"{NOT_A_CHECKPOINT}: {name[:40]!r} is not a checkpoint field")


def _check_fields(entry: object, fields: dict[str, Any]) -> None:
    if not isinstance(entry, dict):
        raise Forbidden(f"{NOT_A_CHECKPOINT}: each history entry must be an object")
    for name, value in entry.items():
        if name not in fields or not fields[name](value):
            raise Forbidden(f"{NOT_A_CHECKPOINT}: {name[:40]!r} is not a history field")


BAD_REVISION = (
    "revision ids in an encrypted app are N-<32 lower-case hex digits>, "
    f"with at most {REVISIONS_MAX} ancestors in _revisions"
)


def is_revision(value: object) -> bool:
    """``N-<md5 hex>``, as PouchDB and CouchDB make revision ids."""
    return isinstance(value, str) and _REVISION.fullmatch(value) is not None


def check_revisions(doc: dict[str, Any]) -> None:
    """Refuse revision ids that could carry anything but a hash (``new_edits=false`` stores
    them as given): ``_rev`` and ``_revisions`` as PouchDB and CouchDB write them, bounded by
    CouchDB's default ``revs_limit``."""
    if "_rev" in doc and not is_revision(doc["_rev"]):
        raise Forbidden(BAD_REVISION)
    if "_revisions" not in doc:
        return
    revisions = doc["_revisions"]
    if not isinstance(revisions, dict) or set(revisions) != {"start", "ids"}:
        raise Forbidden(BAD_REVISION)
    start, ids = revisions["start"], revisions["ids"]
    if type(start) is not int or not 1 <= start < 2**53:
        raise Forbidden(BAD_REVISION)
    if not isinstance(ids, list) or not 1 <= len(ids) <= min(REVISIONS_MAX, start):
        raise Forbidden(BAD_REVISION)
    if not all(isinstance(i, str) and _HASH.fullmatch(i) for i in ids):
        raise Forbidden(BAD_REVISION)


def check_sealed_attachments(attachments: object) -> None:
    """Refuse ``_attachments`` unless every entry is stored as the plugins store a sealed one.

    Each entry is a stub (already on the server), a multipart part that ``follows``, or inline
    ``data``. Like the envelope, only the shape is checked: a random name, the one type, and
    room for a nonce and a tag. Compressed forms (``encoding``) are refused: gzip of plaintext
    would pass for bytes of any length.
    """
    if not isinstance(attachments, dict):
        raise Forbidden(f"{ATTACHMENT_NOT_ENCRYPTED}: _attachments must be an object")
    for name, entry in attachments.items():
        reason = _unsealed_attachment(name, entry)
        if reason is not None:
            raise Forbidden(f"{ATTACHMENT_NOT_ENCRYPTED}: {reason}")


def _unsealed_attachment(name: str, entry: object) -> str | None:
    """Why one attachment entry does not look sealed, or None when it does."""
    if not isinstance(entry, dict):
        return "each attachment must be an object"
    if not _STORED_NAME.fullmatch(name):
        return "its name must be 32 lower-case hex digits"
    if entry.get("content_type") != SEALED_ATTACHMENT_TYPE:
        return f"its content_type must be {SEALED_ATTACHMENT_TYPE}"
    stub, follows, inline = entry.get("stub") is True, entry.get("follows") is True, "data" in entry
    if stub + follows + inline != 1:
        return "it must be exactly one of a stub, a multipart part (follows) or inline data"
    if stub:
        return None  # already stored: this write does not change it
    if "encoding" in entry:
        return "a compressed attachment cannot be checked"
    if follows:
        for field in ("length", "encoded_length"):
            if field in entry and not _at_least(entry[field], SEALED_ATTACHMENT_MIN_BYTES):
                return f"its {field} is too short for a nonce and a tag"
        return None
    length = b64_length(entry["data"])
    if length is None:
        return "its data must be base64"
    if length < SEALED_ATTACHMENT_MIN_BYTES:
        return "its data is too short for a nonce and a tag"
    return None


def _at_least(value: object, least: int) -> bool:
    return type(value) is int and value >= least


def looks_like_envelope(value: object) -> bool:
    """``ep1.<kid>.<nonce>.<ct‖tag>`` in strict base64url, with ep1's sizes; not decrypted.

    The ciphertext is only checked for its alphabet and least length: it can be megabytes, and
    the device that opens it decodes it strictly anyway.
    """
    if not isinstance(value, str):
        return False
    parts = value.split(".")
    if len(parts) != 4 or parts[0] != "ep1":
        return False
    _, kid, nonce, sealed = parts
    return (
        b64u_length(kid) == KID_BYTES
        and b64u_length(nonce) == NONCE_BYTES
        and _B64U.fullmatch(sealed) is not None
        and len(sealed) % 4 != 1
        and len(sealed) * 3 // 4 >= TAG_BYTES
    )


def check_wrap_record(kid_in_id: str, doc: dict[str, Any]) -> None:
    """Accept ``ep1-keywrap-<kid>`` only as the wrap record (docs/encryption-format.md) of its kid.

    The id is the one place a device looks for the wrapped key, so what is stored there must be
    exactly a record a client can unwrap; any other field would be plaintext beside it.
    """
    body = {name for name in doc if not name.startswith("_")}
    if body != WRAP_FIELDS:
        raise Forbidden(f"{BAD_WRAP}: expected exactly the fields {', '.join(sorted(WRAP_FIELDS))}")
    if doc["v"] != "ep1w" or doc["kdf"] != "argon2id13":
        raise Forbidden(f"{BAD_WRAP}: v must be ep1w and kdf argon2id13")
    ops, mem = doc["ops"], doc["mem"]
    if type(ops) is not int or not WRAP_MIN_OPS <= ops <= WRAP_MAX_OPS:
        raise Forbidden(f"{BAD_WRAP}: ops must be an integer from {WRAP_MIN_OPS} to {WRAP_MAX_OPS}")
    if type(mem) is not int or not WRAP_MIN_MEM <= mem <= WRAP_MAX_MEM or mem % 1024:
        raise Forbidden(
            f"{BAD_WRAP}: mem must be whole KiB from {WRAP_MIN_MEM} to {WRAP_MAX_MEM} bytes"
        )
    sizes = {"salt": SALT_BYTES, "kid": KID_BYTES, "n": NONCE_BYTES, "c": KEY_BYTES + TAG_BYTES}
    for name, size in sizes.items():
        if b64u_length(doc[name]) != size:
            raise Forbidden(f"{BAD_WRAP}: {name} must be {size} bytes in base64url")
    if doc["kid"] != kid_in_id:
        raise Forbidden(f"{BAD_WRAP}: the kid in the document id does not match the record")


def b64u_length(value: object) -> int | None:
    """The decoded length of canonical unpadded base64url, or None for anything else."""
    if not isinstance(value, str) or not _B64U.fullmatch(value) or len(value) % 4 == 1:
        return None
    try:
        data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != value:
        return None  # same bytes, another spelling (stray low bits in the last character)
    return len(data)


def b64_length(value: object) -> int | None:
    """The decoded length of strict, padded standard base64, or None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        return len(binascii.a2b_base64(value, strict_mode=True))
    except (binascii.Error, ValueError):
        return None


def doc_id_of(doc: Any) -> str:
    if isinstance(doc, dict) and isinstance(doc.get("_id"), str):
        return str(doc["_id"])
    return ""


def split_bulk(
    docs: list[Any], *, encryption_required: bool = False
) -> tuple[list[Any], dict[int, CouchError]]:
    """The documents that may be written, and the refusals by position in the request."""
    kept: list[Any] = []
    refused: dict[int, CouchError] = {}
    for index, doc in enumerate(docs):
        try:
            check_doc(doc_id_of(doc), doc, encryption_required=encryption_required)
        except CouchError as refusal:
            refused[index] = refusal
        else:
            kept.append(doc)
    return kept, refused


def merge_bulk_results(
    docs: list[Any], refused: dict[int, CouchError], upstream: list[Any]
) -> list[Any]:
    """Put the refusals back where their documents stood.

    With ``new_edits=true`` CouchDB answers one entry per document, in order; with
    ``new_edits=false`` only the failures. A positional merge serves the first, appending the
    second.
    """
    errors = {i: refused[i].item(doc_id_of(docs[i])) for i in refused}
    if len(upstream) != len(docs) - len(refused):
        return [*upstream, *errors.values()]
    results = iter(upstream)
    return [errors[i] if i in errors else next(results) for i in range(len(docs))]
