"""Length hiding for document bodies: ISO/IEC 7816-4 padding to a size bucket.

The rule, identical in Python, JavaScript and ``vectors/ep1.json``:

    n = len(body) + 1                       # the body plus the mandatory 0x80 marker
    if n <= 4096:  block = 256
    else:          E = floor(log2(n)); S = floor(log2(E)) + 1; block = 2 ** (E - S)
    padded = body ‖ 0x80 ‖ 0x00 * (ceil(n / block) * block - n)

Below 4 KiB every body is rounded up to a multiple of 256 bytes. Above, the padded length is
Padmé's (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and Communication with
PURBs", PETS 2019): at most ~12 % overhead while leaking only O(log log n) bits of the length.
Padmé buckets are multiples of 256 from 4 KiB on, so the two rules join without a seam, and both
are plain ``sodium_pad`` with a block size that depends on the length.

Unpadding is strict: the padded length must be a positive multiple of 256, the marker must be
present, and the padded length must be exactly the one the rule gives for the recovered body.
Anything else is :class:`~encryption_plugin.errors.BadEnvelope` ("bad padding").
"""

from __future__ import annotations

from nacl.bindings import sodium_pad, sodium_unpad
from nacl.exceptions import CryptoError as NaclCryptoError

from .errors import BadEnvelope

__all__ = ["SMALL_LIMIT", "pad", "padded_length", "unpad"]

BLOCK = 256
SMALL_LIMIT = 4096


def _block_for(n: int) -> int:
    """The padding block for ``n`` bytes (body plus marker), per the module docstring."""
    if n <= SMALL_LIMIT:
        return BLOCK
    e = n.bit_length() - 1  # floor(log2(n))
    s = e.bit_length()  # floor(log2(e)) + 1
    return 1 << (e - s)


def padded_length(body_length: int) -> int:
    """The length :func:`pad` produces for a body of ``body_length`` bytes."""
    n = body_length + 1
    block = _block_for(n)
    return -(-n // block) * block


def pad(body: bytes) -> bytes:
    """Pad ``body`` per the module rule (always adds at least the 0x80 marker)."""
    return sodium_pad(body, _block_for(len(body) + 1))


def unpad(padded: bytes) -> bytes:
    """Remove the padding, requiring it to be exactly what :func:`pad` would have produced."""
    if not padded or len(padded) % BLOCK:
        raise BadEnvelope("bad padding")
    # The padding of a canonical body is shorter than the block of its padded length, so
    # sodium_unpad searching that block finds the marker whenever one exists.
    try:
        body = sodium_unpad(padded, _block_for(len(padded)))
    except NaclCryptoError:
        raise BadEnvelope("bad padding") from None
    if padded_length(len(body)) != len(padded):
        raise BadEnvelope("bad padding")
    return body
