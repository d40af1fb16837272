"""Documents: the ``ep1`` envelope.

Stored form::

    {"_id", "_rev", "_deleted"?, "_attachments"?, ...,
     "e2e": "ep1.<b64u kid>.<b64u nonce>.<b64u ct‖tag>"}

* Body: the document without its top-level ``_`` fields (plus ``$att`` when it has attachments),
  as compact UTF-8 JSON, padded per :mod:`.padding`. ``$att`` is therefore a reserved field name.
* Cipher: XChaCha20-Poly1305-IETF under ``K_doc`` with a fresh random 24-byte nonce per seal.
* Associated data: ``"ep1/doc\\0" ‖ kid ‖ u32‖app_id ‖ u32‖_id`` (``_id`` as given, UTF-8, not
  normalised), so a body moved to another id, app or key fails to open. ``_rev`` is not bound.
* Clear: ``_id``, ``_rev``, ``_deleted``, ``_conflicts``, ``_revisions`` and the other ``_`` fields,
  attachment stubs (under their random stored names), and ``_local/*`` documents entirely.

The body JSON need not be canonical: readers parse it, they never compare it. (Python and
JavaScript serialise floats and integer-like keys differently; the vectors avoid both.)

Tombstones without a body (``{"_id", "_rev", "_deleted": true}``) stay clear: there is nothing to
hide and the server may delete documents anyway. Every other document must carry ``e2e`` to open.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

import orjson

from . import _rng
from .aead import NONCE_BYTES, TAG_BYTES, decrypt, encrypt
from .attachments import (
    STORED_TYPE,
    AttachmentInfo,
    new_stored_name,
    open_with,
    parse_index,
    seal_with,
)
from .codec import b64u_decode, b64u_encode, u32_framed
from .errors import BadEnvelope, UnknownSuite
from .keys import KID_BYTES, Keyring, KeySet
from .padding import pad, unpad

__all__ = ["attachment_index", "doc_ad", "encode_body", "is_sealed", "open_doc", "seal_doc"]

SUITE = "ep1"
FIELD = "e2e"
ATT_FIELD = "$att"
DOC_AD_PREFIX = b"ep1/doc\x00"
LOCAL_PREFIX = "_local/"


# -- pieces ------------------------------------------------------------------------------------


def doc_ad(kid: bytes, app_id: str, doc_id: str) -> bytes:
    """Associated data of a document body."""
    return (
        DOC_AD_PREFIX
        + kid
        + u32_framed(app_id.encode("utf-8"))
        + u32_framed(doc_id.encode("utf-8"))
    )


def encode_body(body: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as ``JSON.stringify`` writes it for the same (non-float) values.

    A body of strings, integers and booleans only (a note's) is encoded by ``orjson``, some
    fifty times faster, whose bytes for those are the same (a test holds it to that); any
    other body, or one ``orjson`` refuses (a lone surrogate, a 65-bit integer), by ``json``,
    which then raises as it always did."""
    if _flat(body):
        try:
            return orjson.dumps(body)
        except TypeError:
            pass
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


_FLAT = frozenset({str, int, bool})


def _flat(body: Mapping[str, Any]) -> bool:
    """Whether ``body`` is a ``dict`` of exactly ``str`` keys and ``str``/``int``/``bool``
    values (no subclasses: their encodings are theirs)."""
    return (
        type(body) is dict
        and _FLAT.issuperset(map(type, body.values()))
        and all(type(key) is str for key in body)
    )


def _reject_constant(name: str) -> Any:
    raise BadEnvelope(f"body contains {name}, which is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # one for every body opened


def decode_body(data: bytes) -> dict[str, Any]:
    try:
        body = _DECODER.decode(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadEnvelope("body is not UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise BadEnvelope("body is not a JSON object")
    if any(key.startswith("_") for key in body):
        raise BadEnvelope("body carries a reserved _ field")
    return body


def seal_body(keys: KeySet, app_id: str, doc_id: str, body: bytes, nonce: bytes) -> str:
    """The ``e2e`` string for already-encoded ``body`` bytes (padding applied here)."""
    sealed = encrypt(keys.doc, nonce, doc_ad(keys.kid, app_id, doc_id), pad(body))
    return ".".join((SUITE, b64u_encode(keys.kid), b64u_encode(nonce), b64u_encode(sealed)))


def parse_envelope(value: object) -> tuple[bytes, bytes, bytes]:
    """Split an ``e2e`` value into ``(kid, nonce, ct‖tag)``, strictly."""
    if not isinstance(value, str):
        raise BadEnvelope("e2e is not a string")
    parts = value.split(".")
    if parts[0] != SUITE:
        raise UnknownSuite("e2e: unknown suite")
    if len(parts) != 4:
        raise BadEnvelope("e2e: expected ep1.<kid>.<nonce>.<ciphertext>")
    kid = b64u_decode(parts[1], what="e2e kid")
    nonce = b64u_decode(parts[2], what="e2e nonce")
    sealed = b64u_decode(parts[3], what="e2e ciphertext")
    if len(kid) != KID_BYTES or len(nonce) != NONCE_BYTES:
        raise BadEnvelope("e2e: wrong kid or nonce length")
    if len(sealed) < TAG_BYTES:
        raise BadEnvelope("e2e: ciphertext truncated")
    return kid, nonce, sealed


def open_body(keyring: Keyring, doc_id: str, envelope: object) -> tuple[KeySet, dict[str, Any]]:
    kid, nonce, sealed = parse_envelope(envelope)
    keys = keyring.keys_for(kid)
    padded = decrypt(keys.doc, nonce, doc_ad(kid, keyring.app_id, doc_id), sealed, what="document")
    return keys, decode_body(unpad(padded))


# -- documents ---------------------------------------------------------------------------------


def _body_fields(doc: Mapping[str, Any]) -> list[str]:
    return [key for key in doc if not key.startswith("_")]


def is_sealed(doc: Mapping[str, Any]) -> bool:
    """True if ``doc``'s only non-``_`` field is a string ``e2e`` (whatever its suite)."""
    return _body_fields(doc) == [FIELD] and isinstance(doc[FIELD], str)


def _doc_id(doc: Mapping[str, Any]) -> str:
    doc_id = doc.get("_id")
    if not isinstance(doc_id, str) or not doc_id:
        raise ValueError("a document needs a string _id before it can be sealed or opened")
    return doc_id


def _is_bare_tombstone(doc: Mapping[str, Any]) -> bool:
    return doc.get("_deleted") is True and not _body_fields(doc) and not doc.get("_attachments")


def _attachment_bytes(name: str, entry: Mapping[str, Any]) -> bytes:
    if entry.get("stub"):
        raise ValueError(
            f"attachment {name!r} is a stub: sealing needs its data (fetch with attachments=true)"
        )
    data = entry.get("data")
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str):
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error:
            raise ValueError(f"attachment {name!r}: data is not base64") from None
    raise ValueError(f"attachment {name!r} has no data")


def seal_doc(doc: Mapping[str, Any], keyring: Keyring) -> dict[str, Any]:
    """Return the stored form of ``doc``, sealed with the keyring's active key.

    Passes through unchanged (as a shallow copy): ``_local/*`` documents, documents already
    sealed, and bare tombstones. Attachments must carry their ``data`` (bytes or base64); each
    is sealed under a fresh random stored name. Raises :class:`ValueError` for documents that
    cannot be sealed (no ``_id``, a reserved ``$att`` field, a stub, an attachment over 16 MiB).
    """
    doc_id = _doc_id(doc)
    if doc_id.startswith(LOCAL_PREFIX) or is_sealed(doc) or _is_bare_tombstone(doc):
        return dict(doc)
    keys = keyring.active_keys()
    body = {key: doc[key] for key in _body_fields(doc)}
    if ATT_FIELD in body:
        raise ValueError(f"{ATT_FIELD} is reserved for the sealed attachment index")

    sealed: dict[str, Any] = {key: value for key, value in doc.items() if key.startswith("_")}
    attachments = doc.get("_attachments")
    if attachments:
        stored_atts: dict[str, Any] = {}
        index: dict[str, Any] = {}
        for name, entry in attachments.items():
            data = _attachment_bytes(name, entry)
            stored = new_stored_name()
            blob = seal_with(keys, keyring.app_id, doc_id, stored, data)
            stored_atts[stored] = {
                "content_type": STORED_TYPE,
                "data": base64.b64encode(blob).decode("ascii"),
            }
            index[stored] = {
                "name": name,
                "type": entry.get("content_type") or STORED_TYPE,
                "length": len(data),
            }
        sealed["_attachments"] = stored_atts
        body[ATT_FIELD] = index
    sealed[FIELD] = seal_body(
        keys, keyring.app_id, doc_id, encode_body(body), _rng.random_bytes(NONCE_BYTES)
    )
    return sealed


def _open_attachments(
    stored: Mapping[str, Any],
    index: Mapping[str, AttachmentInfo],
    keys: KeySet,
    app_id: str,
    doc_id: str,
) -> dict[str, Any]:
    if set(stored) != set(index):
        raise BadEnvelope("attachments do not match the sealed attachment index")
    opened: dict[str, Any] = {}
    for stored_name, entry in stored.items():
        info = index[stored_name]
        if not isinstance(entry, dict):
            raise BadEnvelope("attachment entry is not an object")
        out: dict[str, Any] = {"content_type": info.content_type}
        if "revpos" in entry:
            out["revpos"] = entry["revpos"]
        if "data" in entry:
            try:
                blob = base64.b64decode(entry["data"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise BadEnvelope(f"attachment {stored_name!r}: data is not base64") from None
            data = open_with(keys, app_id, doc_id, stored_name, blob)
            if len(data) != info.length:
                raise BadEnvelope(f"attachment {stored_name!r}: length differs from the index")
            out["data"] = base64.b64encode(data).decode("ascii")
        else:
            out["length"] = info.length
            out["stub"] = True
        opened[info.name] = out
    return opened


def open_doc(doc: Mapping[str, Any], keyring: Keyring) -> dict[str, Any]:
    """Return the plaintext of a stored document, or raise a :class:`CryptoError`.

    ``_local/*`` documents and bare tombstones pass through. Attachments come back under their
    real names and types: inline ones with their plaintext ``data`` as base64 (CouchDB's JSON
    shape), stubs with their real ``length``. Server-side ``digest`` values describe ciphertext
    and are dropped.
    """
    doc_id = _doc_id(doc)
    if doc_id.startswith(LOCAL_PREFIX) or _is_bare_tombstone(doc):
        return dict(doc)
    if FIELD not in doc:
        raise BadEnvelope("document is not sealed")
    if _body_fields(doc) != [FIELD]:
        raise BadEnvelope("sealed document carries clear fields")
    keys, body = open_body(keyring, doc_id, doc[FIELD])
    index = parse_index(body.pop(ATT_FIELD, {}), keys.kid)

    opened = {k: v for k, v in doc.items() if k.startswith("_") and k != "_attachments"}
    opened.update(body)
    stored = doc.get("_attachments") or {}
    if not isinstance(stored, dict):
        raise BadEnvelope("_attachments is not an object")
    if stored or index:
        opened["_attachments"] = _open_attachments(stored, index, keys, keyring.app_id, doc_id)
    return opened


def attachment_index(doc: Mapping[str, Any], keyring: Keyring) -> dict[str, AttachmentInfo]:
    """For a stored (sealed) document: real attachment name → where and how it is stored.

    Use it to fetch an attachment stub yourself: ``GET /db/<_id>/<info.stored_name>``, then
    :func:`open_attachment` with ``name=info.stored_name, kid=info.kid``.
    """
    keys, body = open_body(keyring, _doc_id(doc), doc.get(FIELD))
    return {info.name: info for info in parse_index(body.get(ATT_FIELD, {}), keys.kid).values()}
