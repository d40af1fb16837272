"""docs/encryption-format.md is enough to implement ``ep1``: a second reading of it, written from
the page alone (hashlib, base64 and libsodium's raw AEAD and Argon2id; nothing of
``encryption_plugin``), reproduces every positive known answer in vectors/ep1.json."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_pwhash_alg,
    crypto_pwhash_ALG_ARGON2ID13,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "encryption_plugin" / "vectors" / "ep1.json").read_text("utf-8"))
KEYS = {k["name"]: k for k in VECTORS["keys"]}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def framed(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<I", len(data)) + data


def subkey(root: bytes, subkey_id: int, length: int) -> bytes:
    salt = struct.pack("<Q", subkey_id)  # hashlib zero-pads salt and person to 16 bytes
    return hashlib.blake2b(
        b"", digest_size=length, key=root, salt=salt, person=b"ep1-keys"
    ).digest()


def padded_length(body_length: int) -> int:
    n = body_length + 1
    if n <= 4096:
        block = 256
    else:
        e = n.bit_length() - 1
        s = e.bit_length()
        block = 2 ** (e - s)
    return -(-n // block) * block


def pad(body: bytes) -> bytes:
    return body + b"\x80" + bytes(padded_length(len(body)) - len(body) - 1)


@pytest.mark.parametrize("key", VECTORS["keys"], ids=lambda k: k["name"])
def test_keys_fingerprint_and_exports(key: dict[str, Any]) -> None:
    root = bytes.fromhex(key["root"])
    assert subkey(root, 1, 32).hex() == key["k_doc"]
    assert subkey(root, 2, 32).hex() == key["k_att"]
    assert subkey(root, 3, 32).hex() == key["k_idmac"]
    kid = subkey(root, 4, 16)[:8]
    assert kid.hex() == key["kid"] and b64u(kid) == key["kid_b64u"]
    hexed = kid.hex().upper()
    assert "-".join(hexed[i : i + 4] for i in range(0, 16, 4)) == key["fingerprint"]
    app = key["app_id"].encode()
    chk = hashlib.blake2b(app + b"\x00\x01" + root, digest_size=4, person=b"ep1-export").digest()
    assert chk.hex() == key["export_checksum"]
    payload = b"\x01" + root + chk
    assert f"ep1k:{key['app_id']}:{b64u(payload)}" == key["export"]
    b32 = base64.b32encode(app + b"\x00\x01" + root + chk).decode().rstrip("=")
    assert "-".join(b32[i : i + 4] for i in range(0, len(b32), 4)) == key["export_base32"]


def test_padding_lengths() -> None:
    for case in VECTORS["padding"]["positive"]:
        assert padded_length(case["body_length"]) == case["padded_length"], case


@pytest.mark.parametrize("case", VECTORS["documents"], ids=lambda c: c["name"])
def test_documents(case: dict[str, Any]) -> None:
    key = KEYS[case["keys"][0]]
    root = bytes.fromhex(key["root"])
    k_doc, k_att, kid = subkey(root, 1, 32), subkey(root, 2, 32), subkey(root, 4, 16)[:8]
    doc, stored = case["doc"], case["stored"]
    body_obj = {k: v for k, v in doc.items() if not k.startswith("_")}
    index = {}
    for att in case.get("attachments", []):
        nonce = bytes.fromhex(att["nonce"])
        ad = b"ep1/att\x00" + kid + framed(case["app_id"]) + framed(doc["_id"])
        ad += framed(att["stored_name"])
        assert ad.hex() == att["ad"]
        plain = bytes.fromhex(att["plaintext"])
        blob = nonce + crypto_aead_xchacha20poly1305_ietf_encrypt(plain, ad, nonce, k_att)
        assert blob.hex() == att["blob"]
        entry = stored["_attachments"][att["stored_name"]]
        assert entry == {
            "content_type": "application/octet-stream",
            "data": base64.b64encode(blob).decode(),
        }
        real = doc["_attachments"][att["name"]]
        index[att["stored_name"]] = {
            "name": att["name"],
            "type": real.get("content_type") or "application/octet-stream",
            "length": len(plain),
        }
    if index:
        body_obj["$att"] = index
    body = json.dumps(body_obj, ensure_ascii=False, separators=(",", ":")).encode()
    assert body.hex() == case["body"]
    assert pad(body).hex() == case["padded"]
    ad = b"ep1/doc\x00" + kid + framed(case["app_id"]) + framed(doc["_id"])
    assert ad.hex() == case["ad"]
    nonce = bytes.fromhex(case["nonce"])
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(pad(body), ad, nonce, k_doc)
    assert stored["e2e"] == f"ep1.{b64u(kid)}.{b64u(nonce)}.{b64u(sealed)}"
    clear = {k: v for k, v in doc.items() if k.startswith("_") and k != "_attachments"}
    assert {k: v for k, v in stored.items() if k not in ("e2e", "_attachments")} == clear
    # Opening is the same steps backwards.
    _, _, n_text, c_text = stored["e2e"].split(".")
    opened = crypto_aead_xchacha20poly1305_ietf_decrypt(unb64u(c_text), ad, unb64u(n_text), k_doc)
    assert opened == pad(body)


@pytest.mark.parametrize("case", VECTORS["ids"], ids=lambda c: c["name"])
def test_ids_for_natural_keys(case: dict[str, Any]) -> None:
    k_idmac = subkey(bytes.fromhex(KEYS[case["keys"][0]]["root"]), 3, 32)
    message = framed(case["app_id"]) + unicodedata.normalize("NFC", case["natural_key"]).encode()
    assert message.hex() == case["message"]
    mac = hashlib.blake2b(message, digest_size=16, key=k_idmac).digest()
    assert "h" + b64u(mac) == case["id"]


@pytest.mark.parametrize("case", VECTORS["derivations"]["positive"], ids=lambda c: c["name"])
def test_derivations_for_synced_folders(case: dict[str, Any]) -> None:
    root = bytes.fromhex(KEYS[case["keys"][0]]["root"])
    args = case["args"]
    if case["function"] == "cutter_seed":
        raw = subkey(root, 5, 8)
        assert raw.hex() == case["subkey"]
        assert (int.from_bytes(raw, "big") >> 1) | 1 == int(case["seed"])
        return
    if case["function"] == "path_id":
        natural_key = args["path"]
    elif case["function"] == "folder_id":
        natural_key = unicodedata.normalize("NFC", args["path"]) + "/"
    elif case["function"] == "version_id":
        natural_key = "version\0" + args["of_doc"] + "\0" + args["rev"]
    else:
        assert case["function"] == "chunk_id"
        natural_key = "chunk\0" + hashlib.sha256(bytes.fromhex(args["piece"])).hexdigest()
    message = framed(case["app_id"]) + unicodedata.normalize("NFC", natural_key).encode()
    mac = hashlib.blake2b(message, digest_size=16, key=subkey(root, 3, 32)).digest()
    assert "h" + b64u(mac) == case["id"]


@pytest.mark.parametrize("case", VECTORS["wraps"]["positive"], ids=lambda c: c["name"])
def test_wrap_records(case: dict[str, Any]) -> None:
    root = bytes.fromhex(case["root"])
    kid = subkey(root, 4, 16)[:8]
    record = case["record"]
    salt, nonce = unb64u(record["salt"]), unb64u(record["n"])
    assert salt.hex() == case["salt"] and nonce.hex() == case["nonce"]
    secret = unicodedata.normalize("NFC", case["passphrase"]).encode()
    assert secret.hex() == case["passphrase_nfc_utf8"]
    kek = crypto_pwhash_alg(
        32, secret, salt, record["ops"], record["mem"], crypto_pwhash_ALG_ARGON2ID13
    )
    assert kek.hex() == case["kek"]
    ad = (
        b"ep1/wrap"
        + kid
        + framed(case["app_id"])
        + struct.pack("<IQ", record["ops"], record["mem"])
    )
    ad += salt
    assert ad.hex() == case["ad"]
    assert b64u(crypto_aead_xchacha20poly1305_ietf_encrypt(root, ad, nonce, kek)) == record["c"]
    assert record["kid"] == b64u(kid)
    assert set(record) == {"v", "kdf", "ops", "mem", "salt", "kid", "n", "c"}
