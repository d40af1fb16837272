"""Checks on what a user writes, before it reaches the upstream.

A refused document in ``_bulk_docs`` is refused alone, as CouchDB reports a failed validation:
the others are written, and the answer carries ``{"id", "error", "reason"}`` in its place.

With encryption required for an app (the default; see ``plaintext_apps``), a document may carry
nothing but ``_``-fields and one ``e2e`` envelope (docs/encryption-format.md), so a misconfigured
client cannot leave plaintext on the server. The gateway holds no keys: it checks the *shape* of
the envelope and never tries to open it. Three kinds of document pass without an envelope: bare
tombstones (nothing to hide), ``_local/*`` documents (replication checkpoints) and the
passphrase-wrapped key record ``ep1-keywrap-<kid>``, which is ciphertext of its own and is held
to its exact schema. Attachments are held to the shape the plugins store them in
(docs/encryption-format.md, "Attachments"): a random name, ``application/octet-stream``, and at
least a nonce and a tag of bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from gateway.errors import BadRequest, CouchError, Forbidden

DESIGN_REFUSED = "design documents are not available through couchgate"
NOT_ENCRYPTED = "document is not encrypted"
ATTACHMENT_NOT_ENCRYPTED = "attachment is not encrypted"
BAD_WRAP = "not a valid ep1w key wrap record"

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

_B64U = re.compile(r"[A-Za-z0-9_-]*")


def check_doc(doc_id: str, doc: Any, *, encryption_required: bool = False) -> None:
    """Raise the refusal for one document about to be written, if any."""
    if not isinstance(doc, dict):
        raise BadRequest("Document must be a JSON object")
    if doc_id.startswith("_design/"):
        raise Forbidden(DESIGN_REFUSED)
    if encryption_required:
        check_sealed(doc_id, doc)


def check_sealed(doc_id: str, doc: dict[str, Any]) -> None:
    """Refuse a document that would store anything readable (encryption = required)."""
    if doc_id.startswith(LOCAL_PREFIX):
        return
    body = [name for name in doc if not name.startswith("_")]
    if not body and doc.get("_deleted") is True and not doc.get("_attachments"):
        return  # a bare tombstone, like DELETE: there is nothing in it to encrypt
    if doc_id.startswith(KEYWRAP_PREFIX):
        check_wrap_record(doc_id[len(KEYWRAP_PREFIX) :], doc)
    elif body != [ENVELOPE_FIELD] or not looks_like_envelope(doc[ENVELOPE_FIELD]):
        raise Forbidden(NOT_ENCRYPTED)
    if "_attachments" in doc:
        check_sealed_attachments(doc["_attachments"])


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
