"""Pure functions for the secrets of the handshake: ids, codes, device tokens and their hashes.

Device tokens, enrollment codes and link codes are long random secrets, so a fast hash (SHA-256)
is enough to store them: only a hash ever reaches the database, and a stolen database lets no one
sign in. One-time email codes are short, so they are bound to their challenge with an HMAC under a
server key and guarded by an attempt limit instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass

TOKEN_PREFIX = "cg1"
CODE_DIGITS = 6
_B32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_ID = re.compile(r"^[a-z2-7]{16}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=")


def is_id(text: str) -> bool:
    """Whether ``text`` has the shape of a user or device id (checked before any lookup)."""
    return bool(_ID.match(text))


def new_uid() -> str:
    """A user id: 80 random bits, lowercase base32 (valid inside CouchDB database names)."""
    return _b32(secrets.token_bytes(10)).lower()


def new_device_id() -> str:
    return _b32(secrets.token_bytes(10)).lower()


def new_challenge_id() -> str:
    return secrets.token_urlsafe(18)


def new_email_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def new_grouped_code(groups: int) -> str:
    """A code people can type or scan: ``groups`` blocks of four base32 characters."""
    chars = "".join(secrets.choice(_B32_ALPHABET) for _ in range(4 * groups))
    return "-".join(chars[i : i + 4] for i in range(0, len(chars), 4))


def normalize_grouped_code(code: str) -> str:
    """Forgive what people do when typing a code: case, spaces and dashes."""
    return "".join(ch for ch in code.upper() if ch not in " -\t")


def code_lookup_key(code: str) -> str:
    """The database key of an enrollment or link code: a hash, so the code itself is not stored."""
    return hashlib.sha256(normalize_grouped_code(code).encode()).hexdigest()


def is_email(text: str) -> bool:
    """A plausibility check only: the one real check is that the code arrives."""
    return len(text) <= 254 and bool(_EMAIL.match(text))


def normalize_email(email: str) -> str:
    return unicodedata.normalize("NFC", email.strip()).lower()


def email_hmac(pepper: bytes, email: str) -> str:
    """What the records keep instead of an address: enough to find an account again, no more."""
    return hmac.new(pepper, normalize_email(email).encode(), hashlib.sha256).hexdigest()


def derive_key(secret: str, purpose: str) -> bytes:
    """A key for one purpose, so one configured secret never serves two uses directly."""
    return hmac.new(secret.encode(), b"couchgate/" + purpose.encode(), hashlib.sha256).digest()


def email_code_hash(key: bytes, challenge_id: str, code: str) -> str:
    return hmac.new(key, f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def digests_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True, slots=True)
class DeviceToken:
    """``cg1.<uid>.<device>.<secret>``: the ids say which record to check, the secret proves it."""

    uid: str
    device: str
    secret: str

    @classmethod
    def issue(cls, uid: str, device: str) -> DeviceToken:
        return cls(uid, device, secrets.token_urlsafe(32))

    @classmethod
    def parse(cls, text: str) -> DeviceToken | None:
        parts = text.split(".")
        if len(parts) != 4 or parts[0] != TOKEN_PREFIX or not all(parts[1:]):
            return None
        _, uid, device, secret = parts
        if not (_ID.match(uid) and _ID.match(device)):
            return None
        return cls(uid, device, secret)

    def __str__(self) -> str:
        return f"{TOKEN_PREFIX}.{self.uid}.{self.device}.{self.secret}"

    @property
    def hash(self) -> str:
        return secret_hash(self.secret)
