"""The key's export strings and the wrapped (password-protected) key records."""

from __future__ import annotations

import base64
import unicodedata
from typing import Any

from encryption_plugin import _rng
from encryption_plugin.aead import encrypt
from encryption_plugin.codec import b64u_encode
from encryption_plugin.export import _checksum
from encryption_plugin.keys import Keyring, KeySet
from encryption_plugin.vectors.common import APP, OTHER_APP, ROOTS, replayed
from encryption_plugin.wrap import _seal_record, derive_kek, wrap_ad


def export_vectors() -> dict[str, list[dict[str, Any]]]:
    good = Keyring(APP, ROOTS["A"]).export()
    prefix, b64 = good.rsplit(":", 1)
    payload = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
    b32 = Keyring(APP, ROOTS["A"]).export_base32()
    v2 = b"\x02" + ROOTS["A"] + _checksum(APP, ROOTS["A"])
    flipped = payload[:-1] + bytes([payload[-1] ^ 1])
    positive = [
        {"name": "string", "text": good, "app_id": APP, "root": ROOTS["A"].hex()},
        {"name": "base32", "text": b32, "app_id": APP, "root": ROOTS["A"].hex()},
        {
            "name": "base32-lower-spaced",
            "text": b32.lower().replace("-", " "),
            "app_id": APP,
            "root": ROOTS["A"].hex(),
        },
        {
            "name": "other-app",
            "text": Keyring(OTHER_APP, ROOTS["B"]).export(),
            "app_id": OTHER_APP,
            "root": ROOTS["B"].hex(),
        },
    ]
    b32_chars = b32.replace("-", "")
    bad_b32 = b32_chars[:-3] + ("A" if b32_chars[-3] != "A" else "B") + b32_chars[-2:]
    negative = [
        {
            "name": "bad-checksum",
            "text": f"{prefix}:{b64u_encode(flipped)}",
            "error": "BadEnvelope",
        },
        {
            "name": "app-id-changed",
            "text": good.replace(":notes:", ":notez:"),
            "error": "BadEnvelope",
        },
        {"name": "unknown-version", "text": f"{prefix}:{b64u_encode(v2)}", "error": "UnknownSuite"},
        {"name": "truncated", "text": good[:-4], "error": "BadEnvelope"},
        {"name": "noncanonical-b64u", "text": good + "=", "error": "BadEnvelope"},
        {"name": "bad-app-id", "text": f"ep1k:Notes!:{b64}", "error": "BadEnvelope"},
        {"name": "base32-bad-checksum", "text": bad_b32, "error": "BadEnvelope"},
        {
            "name": "base32-bad-alphabet",
            "text": b32.replace(b32[0], "1", 1),
            "error": "BadEnvelope",
        },
        {"name": "unknown-prefix", "text": "ep2k:notes:" + b64, "error": "UnknownSuite"},
    ]
    return {"positive": positive, "negative": negative}


def wrap_vectors() -> dict[str, list[dict[str, Any]]]:
    keys_a = KeySet.from_root(ROOTS["A"])
    keys_b = KeySet.from_root(ROOTS["B"])
    passphrase_nfd = unicodedata.normalize("NFD", "Ünïcode correct horse")
    positive = []
    for name, ops, mem, weak in [("cheap", 1, 8192, True), ("default", 3, 64 * 1024 * 1024, False)]:

        def seal(ops: int = ops, mem: int = mem) -> dict[str, Any]:
            salt, nonce = _rng.random_bytes(16), _rng.random_bytes(24)
            return _seal_record(keys_a, APP, passphrase_nfd, ops, mem, salt, nonce)

        record, draws = replayed("wrap-" + name, seal)
        salt = bytes.fromhex(draws[0])
        positive.append(
            {
                "name": name,
                "app_id": APP,
                "passphrase": passphrase_nfd,
                "passphrase_nfc_utf8": unicodedata.normalize("NFC", passphrase_nfd).encode().hex(),
                "ops": ops,
                "mem": mem,
                "salt": draws[0],
                "nonce": draws[1],
                "kek": derive_kek(passphrase_nfd, salt, ops, mem).hex(),
                "ad": wrap_ad(keys_a.kid, APP, ops, mem, salt).hex(),
                "root": ROOTS["A"].hex(),
                "record": record,
                # Public unwrap refuses weak parameters; the cheap vector checks the primitives
                # only.
                "unwrap": "WeakParameters" if weak else "ok",
            }
        )
    default = positive[1]["record"]
    salt = bytes.fromhex(positive[1]["salt"])
    nonce = bytes.fromhex(positive[1]["nonce"])
    kek = bytes.fromhex(positive[1]["kek"])
    # Key A sealed under key B's kid: decrypts, but the recomputed kid differs.
    mismatch = dict(default)
    mismatch["kid"] = b64u_encode(keys_b.kid)
    mismatch["c"] = b64u_encode(
        encrypt(kek, nonce, wrap_ad(keys_b.kid, APP, 3, 64 * 1024 * 1024, salt), ROOTS["A"])
    )
    negative = [
        {
            "name": "wrong-passphrase",
            "record": default,
            "passphrase": "wrong",
            "app_id": APP,
            "error": "AuthenticationFailed",
        },
        {
            "name": "other-app",
            "record": default,
            "passphrase": positive[1]["passphrase"],
            "app_id": OTHER_APP,
            "error": "AuthenticationFailed",
        },
        {
            "name": "kid-mismatch",
            "record": mismatch,
            "passphrase": positive[1]["passphrase"],
            "app_id": APP,
            "error": "AuthenticationFailed",
        },
        {
            "name": "weak-ops",
            "record": dict(default, ops=2),
            "passphrase": "x",
            "app_id": APP,
            "error": "WeakParameters",
        },
        {
            "name": "weak-mem",
            "record": dict(default, mem=32 * 1024 * 1024),
            "passphrase": "x",
            "app_id": APP,
            "error": "WeakParameters",
        },
        {
            "name": "cheap-record",
            "record": positive[0]["record"],
            "passphrase": "x",
            "app_id": APP,
            "error": "WeakParameters",
        },
        {
            "name": "excessive-mem",
            "record": dict(default, mem=8 * 1024 * 1024 * 1024),
            "passphrase": "x",
            "app_id": APP,
            "error": "BadEnvelope",
        },
        {
            "name": "unknown-version",
            "record": dict(default, v="ep2w"),
            "passphrase": "x",
            "app_id": APP,
            "error": "UnknownSuite",
        },
        {
            "name": "unknown-kdf",
            "record": dict(default, kdf="scrypt"),
            "passphrase": "x",
            "app_id": APP,
            "error": "UnknownSuite",
        },
        {
            "name": "extra-field",
            "record": dict(default, app="notes"),
            "passphrase": "x",
            "app_id": APP,
            "error": "BadEnvelope",
        },
        {
            "name": "ops-not-integer",
            "record": dict(default, ops="3"),
            "passphrase": "x",
            "app_id": APP,
            "error": "BadEnvelope",
        },
        {
            "name": "short-salt",
            "record": dict(default, salt=default["salt"][:-3]),
            "passphrase": "x",
            "app_id": APP,
            "error": "BadEnvelope",
        },
        {
            "name": "noncanonical-nonce",
            "record": dict(default, n=default["n"] + "="),
            "passphrase": "x",
            "app_id": APP,
            "error": "BadEnvelope",
        },
    ]
    return {"positive": positive, "negative": negative}
