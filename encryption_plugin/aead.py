"""XChaCha20-Poly1305-IETF through libsodium, with ``ep1``'s error mapping.

The one place that calls the AEAD, so that every failure becomes
:class:`~encryption_plugin.errors.AuthenticationFailed` and nothing else leaks out of PyNaCl.
"""

from __future__ import annotations

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError as NaclCryptoError

from .errors import AuthenticationFailed

__all__ = ["NONCE_BYTES", "TAG_BYTES", "decrypt", "encrypt"]

NONCE_BYTES = 24
TAG_BYTES = 16


def encrypt(key: bytes, nonce: bytes, ad: bytes, plaintext: bytes) -> bytes:
    """``ct ‖ tag``. The caller guarantees a fresh random nonce (192 bits: no counter needed)."""
    return crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, key)


def decrypt(key: bytes, nonce: bytes, ad: bytes, sealed: bytes, *, what: str) -> bytes:
    """Verify and decrypt ``ct ‖ tag``; :class:`AuthenticationFailed` naming ``what`` otherwise."""
    try:
        return crypto_aead_xchacha20poly1305_ietf_decrypt(sealed, ad, nonce, key)
    except NaclCryptoError:
        raise AuthenticationFailed(f"{what}: authentication failed") from None
