"""Passphrase-wrapped copy of ``K_root``, optionally stored on the server.

Record (docs/encryption-format.md, "Passphrase wrap record")::

    {"v": "ep1w", "kdf": "argon2id13", "ops": 3, "mem": 67108864,
     "salt": b64u(16), "kid": b64u(8), "n": b64u(24), "c": b64u(32 + 16)}

    KEK = Argon2id(NFC(passphrase), salt, ops, mem, p=1, 32 bytes)   # libsodium crypto_pwhash
    c   = XChaCha20-Poly1305(KEK, n, K_root,
                             AD = "ep1/wrap" ‖ kid ‖ u32‖app_id ‖ u32(ops) ‖ u64(mem) ‖ salt)

The record does not name the app, so :func:`unwrap` takes ``app_id`` from the caller (the app
knows who it is, and a record for another app then fails authentication). After unwrapping the
key id is recomputed and must equal the record's. Records asking for less than ``ops = 3`` or
``mem = 64 MiB`` are refused (:class:`WeakParameters`), and so are records asking for more than
``ops = 16`` or ``mem = 1 GiB`` (:class:`BadEnvelope`), which a hostile server could otherwise use
to stall or exhaust the device.

Argon2id is slow by design (~0.1 to 0.5 s and 64 MiB at the minimum): in async code use
:func:`wrap_async` / :func:`unwrap_async`, which run it in the default executor.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nacl.bindings import crypto_pwhash_alg, crypto_pwhash_ALG_ARGON2ID13

from . import _rng
from .aead import NONCE_BYTES, TAG_BYTES, decrypt, encrypt
from .codec import b64u_decode, b64u_encode, u32, u32_framed, u64
from .errors import AuthenticationFailed, BadEnvelope, UnknownSuite, WeakParameters
from .keys import KEY_BYTES, KID_BYTES, Keyring, KeySet

__all__ = [
    "DEFAULT_MEM",
    "DEFAULT_OPS",
    "MIN_MEM",
    "MIN_OPS",
    "unwrap",
    "unwrap_async",
    "wrap",
    "wrap_async",
]

VERSION = "ep1w"
KDF = "argon2id13"
MIN_OPS = DEFAULT_OPS = 3
MIN_MEM = DEFAULT_MEM = 64 * 1024 * 1024
MAX_OPS = 16
MAX_MEM = 1024 * 1024 * 1024
SALT_BYTES = 16
WRAP_AD_PREFIX = b"ep1/wrap"
_FIELDS = {"v", "kdf", "ops", "mem", "salt", "kid", "n", "c"}


@dataclass(frozen=True)
class _Record:
    ops: int
    mem: int
    salt: bytes
    kid: bytes
    nonce: bytes
    sealed: bytes


def wrap_ad(kid: bytes, app_id: str, ops: int, mem: int, salt: bytes) -> bytes:
    return WRAP_AD_PREFIX + kid + u32_framed(app_id.encode("utf-8")) + u32(ops) + u64(mem) + salt


def derive_kek(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
    """Argon2id v1.3, p = 1, 32 bytes, over the NFC form of the passphrase."""
    if not isinstance(passphrase, str) or not passphrase:
        raise ValueError("the passphrase must be a non-empty string")
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return crypto_pwhash_alg(KEY_BYTES, secret, salt, ops, mem, crypto_pwhash_ALG_ARGON2ID13)


def _check_params(ops: int, mem: int) -> None:
    if ops < MIN_OPS or mem < MIN_MEM:
        raise WeakParameters(f"Argon2id parameters below ops={MIN_OPS}, mem={MIN_MEM}")
    if ops > MAX_OPS or mem > MAX_MEM:
        raise BadEnvelope(f"Argon2id parameters above ops={MAX_OPS}, mem={MAX_MEM}")


def _seal_record(
    keys: KeySet, app_id: str, passphrase: str, ops: int, mem: int, salt: bytes, nonce: bytes
) -> dict[str, Any]:
    """Build a record with no parameter checks (the generator uses it for cheap vectors)."""
    kek = derive_kek(passphrase, salt, ops, mem)
    sealed = encrypt(kek, nonce, wrap_ad(keys.kid, app_id, ops, mem, salt), keys.root)
    return {
        "v": VERSION,
        "kdf": KDF,
        "ops": ops,
        "mem": mem,
        "salt": b64u_encode(salt),
        "kid": b64u_encode(keys.kid),
        "n": b64u_encode(nonce),
        "c": b64u_encode(sealed),
    }


def _parse_record(record: Mapping[str, Any]) -> _Record:
    if not isinstance(record, Mapping):
        raise BadEnvelope("wrap record is not an object")
    if record.get("v") != VERSION or record.get("kdf") != KDF:
        raise UnknownSuite("wrap record: unknown version or KDF")
    if set(record) != _FIELDS:
        raise BadEnvelope("wrap record has missing or extra fields")
    ops, mem = record["ops"], record["mem"]
    if type(ops) is not int or type(mem) is not int or ops < 0 or mem < 0 or mem % 1024:
        # libsodium counts memory in KiB; JavaScript's Argon2id takes KiB, so insist on whole KiB.
        raise BadEnvelope("wrap record: ops and mem must be integers (mem in whole KiB)")
    parsed = _Record(
        ops=ops,
        mem=mem,
        salt=b64u_decode(record["salt"], what="wrap salt"),
        kid=b64u_decode(record["kid"], what="wrap kid"),
        nonce=b64u_decode(record["n"], what="wrap nonce"),
        sealed=b64u_decode(record["c"], what="wrap ciphertext"),
    )
    if (
        len(parsed.salt) != SALT_BYTES
        or len(parsed.kid) != KID_BYTES
        or len(parsed.nonce) != NONCE_BYTES
        or len(parsed.sealed) != KEY_BYTES + TAG_BYTES
    ):
        raise BadEnvelope("wrap record: wrong field length")
    return parsed


def _open_record(parsed: _Record, passphrase: str, app_id: str) -> Keyring:
    kek = derive_kek(passphrase, parsed.salt, parsed.ops, parsed.mem)
    ad = wrap_ad(parsed.kid, app_id, parsed.ops, parsed.mem, parsed.salt)
    root = decrypt(kek, parsed.nonce, ad, parsed.sealed, what="wrap record")
    keyring = Keyring(app_id, root)
    if not hmac.compare_digest(keyring.kid, parsed.kid):
        raise AuthenticationFailed("wrap record: the unwrapped key does not match its kid")
    return keyring


def wrap(
    keyring: Keyring, passphrase: str, *, ops: int = DEFAULT_OPS, mem: int = DEFAULT_MEM
) -> dict[str, Any]:
    """Wrap the keyring's active ``K_root`` under ``passphrase``; returns the JSON record.

    Blocks for the Argon2id run: use :func:`wrap_async` from async code.
    """
    _check_params(ops, mem)
    salt = _rng.random_bytes(SALT_BYTES)
    nonce = _rng.random_bytes(NONCE_BYTES)
    return _seal_record(keyring.active_keys(), keyring.app_id, passphrase, ops, mem, salt, nonce)


def unwrap(record: Mapping[str, Any], passphrase: str, *, app_id: str) -> Keyring:
    """Recover a one-key :class:`Keyring` for ``app_id`` from a wrap record.

    Raises :class:`WeakParameters` before any work for weak records and
    :class:`AuthenticationFailed` for a wrong passphrase, another app, or a kid mismatch.
    Blocks for the Argon2id run: use :func:`unwrap_async` from async code.
    """
    parsed = _parse_record(record)
    _check_params(parsed.ops, parsed.mem)
    return _open_record(parsed, passphrase, app_id)


async def wrap_async(
    keyring: Keyring, passphrase: str, *, ops: int = DEFAULT_OPS, mem: int = DEFAULT_MEM
) -> dict[str, Any]:
    """:func:`wrap` in the loop's default executor, so the event loop keeps running."""
    loop = asyncio.get_running_loop()
    call = functools.partial(wrap, keyring, passphrase, ops=ops, mem=mem)
    return await loop.run_in_executor(None, call)


async def unwrap_async(record: Mapping[str, Any], passphrase: str, *, app_id: str) -> Keyring:
    """:func:`unwrap` in the loop's default executor, so the event loop keeps running."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        None, functools.partial(unwrap, record, passphrase, app_id=app_id)
    )
