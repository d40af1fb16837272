"""Byte-level encodings shared by every part of ``ep1``: strict base64url and length framing.

``ep1`` decodes base64url *strictly*: no ``=`` padding, only the URL-safe alphabet, and canonical
trailing bits. Lenient decoding would give one ciphertext many spellings, which breaks equality
checks and lets an attacker smuggle bits through fields that are compared as strings.
"""

from __future__ import annotations

import base64
import binascii
import string
import struct

from .errors import BadEnvelope

__all__ = ["b64u_decode", "b64u_encode", "u32", "u32_framed", "u64"]

_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
_VALUE = {char: value for value, char in enumerate(_ALPHABET)}
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
# The low bits of the last character that encode nothing, by the text's length modulo 4.
_UNUSED_BITS = {2: 0b1111, 3: 0b11}


def b64u_encode(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str, *, what: str = "field") -> bytes:
    """Decode base64url strictly; raise :class:`BadEnvelope` naming ``what`` otherwise.

    ``binascii``'s strict mode refuses every character outside the standard alphabet, so the
    URL-safe one is mapped onto it after refusing the standard alphabet's own two. Every
    document opened goes through here, hence no regular expression and no encoding back."""
    if (
        not isinstance(text, str)
        or not text.isascii()
        or len(text) % 4 == 1
        or "+" in text
        or "/" in text
        or "=" in text
    ):
        raise BadEnvelope(f"{what} is not base64url")
    padded = text.encode("ascii").translate(_TO_STANDARD) + b"=" * (-len(text) % 4)
    try:
        data = binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error:
        raise BadEnvelope(f"{what} is not base64url") from None
    if (unused := _UNUSED_BITS.get(len(text) % 4)) and _VALUE[text[-1]] & unused:
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
