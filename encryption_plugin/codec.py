"""Byte-level encodings shared by every part of ``ep1``: strict base64url and length framing.

``ep1`` decodes base64url *strictly*: no ``=`` padding, only the URL-safe alphabet, and canonical
trailing bits. Lenient decoding would give one ciphertext many spellings, which breaks equality
checks and lets an attacker smuggle bits through fields that are compared as strings.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct

from .errors import BadEnvelope

__all__ = ["b64u_decode", "b64u_encode", "u32", "u32_framed", "u64"]

_B64U = re.compile(r"[A-Za-z0-9_-]*")


def b64u_encode(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str, *, what: str = "field") -> bytes:
    """Decode base64url strictly; raise :class:`BadEnvelope` naming ``what`` otherwise."""
    if not isinstance(text, str) or not _B64U.fullmatch(text) or len(text) % 4 == 1:
        raise BadEnvelope(f"{what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise BadEnvelope(f"{what} is not base64url") from None
    if b64u_encode(data) != text:
        # Same bytes, different spelling: the unused low bits of the last character were set.
        raise BadEnvelope(f"{what} is not canonical base64url")
    return data


def u32(n: int) -> bytes:
    """Little-endian unsigned 32-bit integer."""
    return struct.pack("<I", n)


def u64(n: int) -> bytes:
    """Little-endian unsigned 64-bit integer."""
    return struct.pack("<Q", n)


def u32_framed(data: bytes) -> bytes:
    """``u32(len(data)) ‖ data``: makes concatenations of variable-length fields unambiguous."""
    return u32(len(data)) + data
