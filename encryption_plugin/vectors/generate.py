"""Write ``ep1.json``: the known-answer vectors both implementations must pass.

Run ``python -m encryption_plugin.vectors.generate`` from the repository root. Deterministic:
keys are fixed and every random draw (nonces, salts, attachment names) comes from a seeded
BLAKE2b stream injected through the private :mod:`encryption_plugin._rng` seam. Each vector
records its draws in order (``random``), so a test can replay them and must reproduce the
stored bytes exactly. Bytes are hex unless a field says b64u/base64.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import unicodedata
from typing import Any

from encryption_plugin import padding
from encryption_plugin.attachments import attachment_ad
from encryption_plugin.codec import b64u_encode
from encryption_plugin.envelope import doc_ad, encode_body, seal_doc
from encryption_plugin.export import _checksum
from encryption_plugin.keys import Keyring, KeySet, derive_subkey, fingerprint_of
from encryption_plugin.vectors.common import APP, OUT, ROOTS, keyring, replayed
from encryption_plugin.vectors.derived import derivation_vectors, id_vectors
from encryption_plugin.vectors.exports import export_vectors, wrap_vectors
from encryption_plugin.vectors.negative import negative_document_vectors


def key_vectors() -> list[dict[str, Any]]:
    out = []
    for name, root in ROOTS.items():
        keys = KeySet.from_root(root)
        ring = Keyring(APP, root)
        out.append(
            {
                "name": name,
                "app_id": APP,
                "root": root.hex(),
                "k_doc": keys.doc.hex(),
                "k_att": keys.att.hex(),
                "k_idmac": keys.idmac.hex(),
                "kid16": derive_subkey(root, 4, 16).hex(),
                "kid": keys.kid.hex(),
                "kid_b64u": b64u_encode(keys.kid),
                "fingerprint": fingerprint_of(keys.kid),
                "export": ring.export(),
                "export_base32": ring.export_base32(),
                "export_checksum": _checksum(APP, root).hex(),
            }
        )
    return out


DOCS: list[tuple[str, list[str], dict[str, Any]]] = [
    (
        "ascii",
        ["A"],
        {
            "_id": "note-1",
            "_rev": "1-967a00dff5e02add41819138abb3284d",
            "title": "Hello",
            "n": 42,
            "tags": ["a", "b"],
            "nested": {"x": None, "y": True, "z": -7},
        },
    ),
    ("empty-body", ["A"], {"_id": "empty"}),
    (
        "non-bmp",
        ["A"],
        {
            "_id": "emoji-\U0001f600-\U0001d11e",
            "text": "party \U0001f389 \u00fc\u00df \u4e2d\u6587",
            "escapes": 'quote " backslash \\ newline \n tab \t ctrl \u0001 ls \u2028',
        },
    ),
    ("id-nfc", ["A"], {"_id": unicodedata.normalize("NFC", "caf\u00e9"), "v": 1}),
    ("id-nfd", ["A"], {"_id": unicodedata.normalize("NFD", "caf\u00e9"), "v": 1}),
    (
        "clear-fields",
        ["A"],
        {
            "_id": "with-meta",
            "_rev": "3-c",
            "_conflicts": ["2-b"],
            "_revisions": {"start": 3, "ids": ["c", "b", "a"]},
            "k": "v",
        },
    ),
    ("deleted-with-body", ["A"], {"_id": "gone", "_rev": "2-x", "_deleted": True, "why": "old"}),
    ("padme", ["A"], {"_id": "big", "text": "x" * 5000}),
    ("exactly-4095", ["A"], {"_id": "edge", "t": "y" * (4095 - len('{"t":""}'))}),
    ("second-key", ["B", "A"], {"_id": "rotated", "v": "sealed with B, opened by kid"}),
    (
        "attachments",
        ["A"],
        {
            "_id": "with-files",
            "title": "files",
            "_attachments": {
                "hello.txt": {
                    "content_type": "text/plain",
                    "data": base64.b64encode(b"hello, world\n").decode(),
                },
                "empty.bin": {"content_type": "application/x-empty", "data": ""},
                "pic.png": {
                    "content_type": "image/png",
                    "data": base64.b64encode(bytes(range(256)) * 3).decode(),
                },
            },
        },
    ),
]


def document_vectors() -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    out = []
    stored_by_name = {}
    for name, key_names, doc in DOCS:
        ring = keyring(APP, *key_names)
        stored, draws = replayed(name, functools.partial(seal_doc, doc, ring))
        keys = ring.active_keys()
        body = {k: v for k, v in doc.items() if not k.startswith("_")}
        vector: dict[str, Any] = {
            "name": name,
            "app_id": APP,
            "keys": key_names,
            "doc": doc,
            "random": draws,
        }
        atts = doc.get("_attachments")
        if atts:
            stored_names = [draws[2 * i] for i in range(len(atts))]
            body["$att"] = {
                stored_names[i]: {
                    "name": n,
                    "type": e["content_type"],
                    "length": len(base64.b64decode(e["data"])),
                }
                for i, (n, e) in enumerate(atts.items())
            }
            vector["attachments"] = [
                {
                    "name": n,
                    "stored_name": stored_names[i],
                    "plaintext": base64.b64decode(e["data"]).hex(),
                    "nonce": draws[2 * i + 1],
                    "ad": attachment_ad(keys.kid, APP, doc["_id"], stored_names[i]).hex(),
                    "blob": base64.b64decode(stored["_attachments"][stored_names[i]]["data"]).hex(),
                }
                for i, (n, e) in enumerate(atts.items())
            ]
        raw = encode_body(body)
        vector.update(
            {
                "body": raw.hex(),
                "padded": padding.pad(raw).hex(),
                "nonce": draws[-1],
                "ad": doc_ad(keys.kid, APP, doc["_id"]).hex(),
                "stored": stored,
            }
        )
        out.append(vector)
        stored_by_name[name] = stored
    return out, stored_by_name


def stub_vector(stored: dict[str, Any]) -> dict[str, Any]:
    """The attachment document as fetched without attachments=true: stubs, not data."""
    stubbed = dict(stored)
    stubbed["_attachments"] = {
        name: {
            "content_type": att["content_type"],
            "revpos": 1,
            "digest": "md5-"
            + base64.b64encode(hashlib.md5(base64.b64decode(att["data"])).digest()).decode(),
            "length": len(base64.b64decode(att["data"])),
            "stub": True,
        }
        for name, att in stored["_attachments"].items()
    }
    opened = {
        "_id": stored["_id"],
        "title": "files",
        "_attachments": {
            "hello.txt": {"content_type": "text/plain", "revpos": 1, "length": 13, "stub": True},
            "empty.bin": {
                "content_type": "application/x-empty",
                "revpos": 1,
                "length": 0,
                "stub": True,
            },
            "pic.png": {"content_type": "image/png", "revpos": 1, "length": 768, "stub": True},
        },
    }
    return {
        "name": "attachment-stubs",
        "app_id": APP,
        "keys": ["A"],
        "stored": stubbed,
        "opened": opened,
    }


def passthrough_vectors(stored: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"name": "local-doc", "doc": {"_id": "_local/checkpoint", "_rev": "0-1", "last_seq": 5}},
        {"name": "bare-tombstone", "doc": {"_id": "note-1", "_rev": "2-a", "_deleted": True}},
        {"name": "already-sealed", "doc": stored["ascii"]},
    ]


def padding_vectors() -> dict[str, Any]:
    lengths = [
        0,
        1,
        7,
        254,
        255,
        256,
        1000,
        4094,
        4095,
        4096,
        5000,
        8190,
        8191,
        8192,
        65535,
        70000,
        1_000_000,
        16 * 1024 * 1024,
    ]
    positive = [{"body_length": n, "padded_length": padding.padded_length(n)} for n in lengths]
    negative = [
        {"name": "empty", "padded": ""},
        {"name": "no-marker", "padded": bytes(256).hex()},
        {"name": "nonzero-after-marker", "padded": (b"ab\x80\x01" + bytes(252)).hex()},
        {"name": "overpadded", "padded": (b"ab\x80" + bytes(509)).hex()},
        {"name": "not-block-multiple", "padded": (b"ab\x80" + bytes(97)).hex()},
    ]
    return {"rule": padding.__doc__, "positive": positive, "negative": negative}


def b64u_vectors() -> dict[str, list[dict[str, Any]]]:
    return {
        "positive": [
            {"text": b64u_encode(bytes.fromhex(h)), "hex": h}
            for h in ["", "00", "0000", "000000", "fbff", "ffffffff", "3e3f"]
        ],
        "negative": [
            {"text": t}
            for t in [
                "AB",
                "AAB",
                "AA=",
                "AA==",
                "+w",
                "/w",
                "A",
                "AAAAA",
                "A A",
                "AQ\n",
                "Zg=",
                "Zm9",
            ]
        ],
    }


def build() -> dict[str, Any]:
    documents, stored = document_vectors()
    return {
        "suite": "ep1",
        "about": (
            "Known-answer vectors for the ep1 envelope (see docs/encryption-format.md). Bytes are "
            "hex unless named b64u/base64. 'random' lists every random draw of a seal in order, "
            "to replay. "
            "'keys' name entries of 'keys'; the first is the active key. Errors are the names of "
            "the CryptoError subclasses. Generated by encryption_plugin/vectors/generate.py."
        ),
        "padding": padding_vectors(),
        "b64u": b64u_vectors(),
        "keys": key_vectors(),
        "documents": documents,
        "attachment_stubs": [stub_vector(stored["attachments"])],
        "passthrough": passthrough_vectors(stored),
        "negative_documents": negative_document_vectors(stored),
        "ids": id_vectors(),
        "derivations": derivation_vectors(),
        "exports": export_vectors(),
        "wraps": wrap_vectors(),
    }


def main() -> None:
    OUT.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
