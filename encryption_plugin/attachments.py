"""Attachments: each version sealed as one AEAD under ``K_att``, stored under a random name.

Stored attachment: ``nonce(24) ‖ ct ‖ tag`` with type ``application/octet-stream`` under a random
name (32 lower-case hex digits), so the server learns neither the name, nor the type; it still sees
the length (attachments are not padded in ``ep1``). Associated data::

    "ep1/att\\0" ‖ kid ‖ u32‖app_id ‖ u32‖_id ‖ u32‖stored_name

The real name, type and length travel inside the sealed document body, in
``"$att": {stored_name: {"name", "type", "length"}}``; the key id is the document envelope's, so an
attachment is always sealed with the same key as the body that describes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import _rng
from .aead import NONCE_BYTES, TAG_BYTES, decrypt, encrypt
from .codec import u32_framed
from .errors import BadEnvelope
from .keys import Keyring, KeySet

__all__ = [
    "MAX_ATTACHMENT_BYTES",
    "STORED_TYPE",
    "AttachmentInfo",
    "attachment_ad",
    "open_attachment",
    "seal_attachment",
]

MAX_ATTACHMENT_BYTES = 16 * 1024 * 1024
STORED_TYPE = "application/octet-stream"
ATT_AD_PREFIX = b"ep1/att\x00"
STORED_NAME_BYTES = 16


@dataclass(frozen=True)
class AttachmentInfo:
    """What the sealed body says about one stored attachment (see :func:`attachment_index`)."""

    stored_name: str
    name: str
    content_type: str
    length: int
    kid: bytes


def attachment_ad(kid: bytes, app_id: str, doc_id: str, stored_name: str) -> bytes:
    return (
        ATT_AD_PREFIX
        + kid
        + u32_framed(app_id.encode("utf-8"))
        + u32_framed(doc_id.encode("utf-8"))
        + u32_framed(stored_name.encode("utf-8"))
    )


def new_stored_name() -> str:
    """A random attachment name: 128 bits as hex (never starts with ``_``)."""
    return _rng.random_bytes(STORED_NAME_BYTES).hex()


def seal_with(keys: KeySet, app_id: str, doc_id: str, stored_name: str, data: bytes) -> bytes:
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise ValueError("attachment is larger than the ep1 cap of 16 MiB")
    nonce = _rng.random_bytes(NONCE_BYTES)
    return nonce + encrypt(
        keys.att, nonce, attachment_ad(keys.kid, app_id, doc_id, stored_name), bytes(data)
    )


def open_with(keys: KeySet, app_id: str, doc_id: str, stored_name: str, blob: bytes) -> bytes:
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise BadEnvelope(f"attachment {stored_name!r}: truncated")
    if len(blob) > NONCE_BYTES + MAX_ATTACHMENT_BYTES + TAG_BYTES:
        raise BadEnvelope(f"attachment {stored_name!r}: larger than the ep1 cap")
    ad = attachment_ad(keys.kid, app_id, doc_id, stored_name)
    return decrypt(
        keys.att, blob[:NONCE_BYTES], ad, blob[NONCE_BYTES:], what=f"attachment {stored_name!r}"
    )


def seal_attachment(
    data: bytes, keyring: Keyring, *, doc_id: str, name: str, kid: bytes | None = None
) -> bytes:
    """Seal one attachment for document ``doc_id`` under its *stored* ``name``.

    Uses the active key unless ``kid`` is given; it must be the key that seals the document body
    describing this attachment. Returns ``nonce ‖ ct ‖ tag``. :func:`seal_doc` does all this for
    attachments included in a document; call this directly only when uploading attachments
    yourself.
    """
    keys = keyring.active_keys() if kid is None else keyring.keys_for(kid)
    return seal_with(keys, keyring.app_id, doc_id, name, data)


def open_attachment(blob: bytes, keyring: Keyring, *, doc_id: str, name: str, kid: bytes) -> bytes:
    """Open ``nonce ‖ ct ‖ tag`` fetched from ``doc_id``'s attachment stored as ``name``.

    ``kid`` is the key id of the document envelope (see :func:`attachment_index`).
    """
    return open_with(keyring.keys_for(kid), keyring.app_id, doc_id, name, blob)


def parse_index(raw: Any, kid: bytes) -> dict[str, AttachmentInfo]:
    """Validate a decrypted ``$att`` map; keyed by stored name."""
    if not isinstance(raw, dict):
        raise BadEnvelope("$att is not an object")
    index: dict[str, AttachmentInfo] = {}
    real_names: set[str] = set()
    for stored, meta in raw.items():
        if not isinstance(meta, dict) or set(meta) != {"name", "type", "length"}:
            raise BadEnvelope("$att entry has the wrong shape")
        name, ctype, length = meta["name"], meta["type"], meta["length"]
        if not (isinstance(name, str) and isinstance(ctype, str)):
            raise BadEnvelope("$att entry has the wrong shape")
        if type(length) is not int or not 0 <= length <= MAX_ATTACHMENT_BYTES:
            raise BadEnvelope("$att entry has a bad length")
        if name in real_names:
            raise BadEnvelope("$att names one attachment twice")
        real_names.add(name)
        index[stored] = AttachmentInfo(stored, name, ctype, length, kid)
    return index
