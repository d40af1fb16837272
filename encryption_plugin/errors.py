"""The one exception tree of the encryption plugin.

Every failure to seal or open is raised, never returned: opening either yields the exact plaintext
that was sealed or raises a :class:`CryptoError`. Messages name *what* failed (a field, a length)
and never contain key material, plaintext or passphrases, so they are safe to log.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "BadEnvelope",
    "CryptoError",
    "UnknownKey",
    "UnknownSuite",
    "WeakParameters",
]


class CryptoError(Exception):
    """Base class: something could not be sealed, opened, imported or unwrapped."""


class BadEnvelope(CryptoError):
    """The input is not well-formed: wrong shape, bad base64url, bad padding, bad checksum."""


class UnknownSuite(CryptoError):
    """The envelope, export or wrap record names a format version this code does not speak."""


class UnknownKey(CryptoError):
    """The envelope was sealed with a key id that is not in the keyring."""


class AuthenticationFailed(CryptoError):
    """The AEAD tag did not verify (tampered, moved to another id or app, wrong passphrase),
    or an unwrapped key does not match the key id it was stored under."""


class WeakParameters(CryptoError):
    """A passphrase-wrapped record asks for Argon2id parameters below the ``ep1`` minimum."""
