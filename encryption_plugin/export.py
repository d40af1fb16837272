"""Key export for a second device: ``ep1k:`` strings and their base32 form.

Format (docs/encryption-format.md, "Key export")::

    payload = 0x01 ‖ K_root ‖ chk             chk = BLAKE2b(digest 4, person "ep1-export",
    text    = "ep1k:" app_id ":" b64u(payload)                app_id ‖ 0x00 ‖ 0x01 ‖ K_root)

The base32 form, for typing, carries the app id too, so that either form alone imports::

    RFC 4648 base32, upper case, no "=" padding, of  app_id ‖ 0x00 ‖ 0x01 ‖ K_root ‖ chk,
    in groups of four characters joined by "-".

On import the base32 form is read case-insensitively and spaces and "-" are ignored. The 32-bit
checksum catches typing and scanning mistakes; it is not a security boundary (the export *is*
the secret).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re

from nacl.bindings import crypto_generichash_blake2b_salt_personal

from .codec import b64u_decode, b64u_encode
from .errors import BadEnvelope, UnknownSuite
from .keys import KEY_BYTES, check_app_id

__all__ = ["export_base32", "export_string", "parse_export"]

PREFIX = "ep1k:"
VERSION = b"\x01"
CHECKSUM_PERSON = b"ep1-export"
CHECKSUM_BYTES = 4
_B32_CHARS = re.compile(r"[A-Z2-7]+")


def _checksum(app_id: str, root: bytes) -> bytes:
    return crypto_generichash_blake2b_salt_personal(
        app_id.encode("ascii") + b"\x00" + VERSION + root,
        digest_size=CHECKSUM_BYTES,
        person=CHECKSUM_PERSON,  # 10 bytes, zero-padded to 16 by libsodium
    )


def export_string(app_id: str, root: bytes) -> str:
    """``ep1k:<app_id>:<b64u(0x01 ‖ K_root ‖ chk)>``."""
    check_app_id(app_id)
    return f"{PREFIX}{app_id}:{b64u_encode(VERSION + root + _checksum(app_id, root))}"


def export_base32(app_id: str, root: bytes) -> str:
    """Upper-case base32 of ``app_id ‖ 0x00 ‖ 0x01 ‖ K_root ‖ chk`` in groups of four."""
    check_app_id(app_id)
    raw = app_id.encode("ascii") + b"\x00" + VERSION + root + _checksum(app_id, root)
    text = base64.b32encode(raw).decode("ascii").rstrip("=")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def _verify(app_id: str, version: bytes, root: bytes, chk: bytes) -> tuple[str, bytes]:
    try:
        check_app_id(app_id)
    except ValueError:
        raise BadEnvelope("export: bad app id") from None
    if version != VERSION:
        raise UnknownSuite("export: unknown version")
    if len(root) != KEY_BYTES:
        raise BadEnvelope("export: wrong length")
    if not hmac.compare_digest(chk, _checksum(app_id, root)):
        raise BadEnvelope("export: bad checksum (mistyped or damaged)")
    return app_id, root


def parse_export(text: str) -> tuple[str, bytes]:
    """Parse either export form into ``(app_id, K_root)``, checking version and checksum."""
    if not isinstance(text, str):
        raise BadEnvelope("export: not a string")
    text = text.strip()
    if text.startswith(PREFIX):
        app_id, sep, payload_text = text[len(PREFIX) :].partition(":")
        if not sep:
            raise BadEnvelope("export: missing ':'")
        payload = b64u_decode(payload_text, what="export")
        if len(payload) != 1 + KEY_BYTES + CHECKSUM_BYTES:
            if payload[:1] != VERSION and payload:
                raise UnknownSuite("export: unknown version")
            raise BadEnvelope("export: wrong length")
        return _verify(app_id, payload[:1], payload[1:-CHECKSUM_BYTES], payload[-CHECKSUM_BYTES:])
    if text[:4].lower() == "ep1k" or ":" in text:
        raise UnknownSuite("export: unknown format")
    return _parse_base32(text)


def _parse_base32(text: str) -> tuple[str, bytes]:
    compact = re.sub(r"[\s-]+", "", text).upper()
    if not _B32_CHARS.fullmatch(compact) or len(compact) % 8 in (1, 3, 6):
        raise BadEnvelope("export: not base32")
    try:
        raw = base64.b32decode(compact + "=" * (-len(compact) % 8))
    except (binascii.Error, ValueError):
        raise BadEnvelope("export: not base32") from None
    if base64.b32encode(raw).decode("ascii").rstrip("=") != compact:
        raise BadEnvelope("export: not canonical base32")
    app_bytes, sep, rest = raw.partition(b"\x00")
    if not sep or len(rest) != 1 + KEY_BYTES + CHECKSUM_BYTES:
        raise BadEnvelope("export: wrong length")
    try:
        app_id = app_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise BadEnvelope("export: bad app id") from None
    return _verify(app_id, rest[:1], rest[1:-CHECKSUM_BYTES], rest[-CHECKSUM_BYTES:])
