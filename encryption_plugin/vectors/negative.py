"""Documents that must not open: each a way a sealed document can be wrong, with the error
both implementations must raise."""

from __future__ import annotations

import base64
import json
from typing import Any

from encryption_plugin import padding
from encryption_plugin.aead import encrypt
from encryption_plugin.codec import b64u_encode
from encryption_plugin.envelope import doc_ad
from encryption_plugin.keys import KeySet
from encryption_plugin.vectors.common import APP, OTHER_APP, ROOTS


def _with_e2e(doc: dict[str, Any], e2e: Any, **extra: Any) -> dict[str, Any]:
    out = dict(doc)
    out["e2e"] = e2e
    out.update(extra)
    return out


def _seal_raw(key: str, doc_id: str, padded: bytes, nonce_byte: int, app_id: str = APP) -> str:
    """Seal arbitrary padded bytes (for the malformed-plaintext cases)."""
    keys = KeySet.from_root(ROOTS[key])
    nonce = bytes([nonce_byte]) * 24
    sealed = encrypt(keys.doc, nonce, doc_ad(keys.kid, app_id, doc_id), padded)
    return ".".join(("ep1", b64u_encode(keys.kid), b64u_encode(nonce), b64u_encode(sealed)))


def negative_document_vectors(stored: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    ascii_doc = stored["ascii"]
    suite, kid, nonce, ct = ascii_doc["e2e"].split(".")
    raw_ct = base64.urlsafe_b64decode(ct + "=" * (-len(ct) % 4))

    def ct_variant(data: bytes) -> str:
        return ".".join((suite, kid, nonce, b64u_encode(data)))

    flipped_tag = raw_ct[:-1] + bytes([raw_ct[-1] ^ 0x01])
    flipped_body = raw_ct[:5] + bytes([raw_ct[5] ^ 0x80]) + raw_ct[6:]
    # Same bytes, different spelling: set an unused low bit in the nonce's last character.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    noncanon_nonce = nonce  # 24 bytes = 32 chars exactly: use the kid (8 bytes, 11 chars)
    last = alphabet.index(kid[-1])
    noncanon_kid = kid[:-1] + alphabet[last | 1 if last % 2 == 0 else last & ~1]
    body_small = b'{"a":1}'
    cases: list[tuple[str, dict[str, Any], list[str], str, str]] = [
        (
            "flipped-tag-byte",
            _with_e2e(ascii_doc, ct_variant(flipped_tag)),
            ["A"],
            APP,
            "AuthenticationFailed",
        ),
        (
            "flipped-ciphertext-byte",
            _with_e2e(ascii_doc, ct_variant(flipped_body)),
            ["A"],
            APP,
            "AuthenticationFailed",
        ),
        (
            "truncated-by-one",
            _with_e2e(ascii_doc, ct_variant(raw_ct[:-1])),
            ["A"],
            APP,
            "AuthenticationFailed",
        ),
        (
            "truncated-below-tag",
            _with_e2e(ascii_doc, ct_variant(raw_ct[:15])),
            ["A"],
            APP,
            "BadEnvelope",
        ),
        ("moved-to-other-id", dict(ascii_doc, _id="note-2"), ["A"], APP, "AuthenticationFailed"),
        (
            "moved-nfc-to-nfd",
            dict(stored["id-nfc"], _id=stored["id-nfd"]["_id"]),
            ["A"],
            APP,
            "AuthenticationFailed",
        ),
        ("moved-to-other-app", ascii_doc, ["A"], OTHER_APP, "AuthenticationFailed"),
        ("unknown-kid", stored["second-key"], ["A"], APP, "UnknownKey"),
        (
            "unknown-suite",
            _with_e2e(ascii_doc, "ep2." + ascii_doc["e2e"][4:]),
            ["A"],
            APP,
            "UnknownSuite",
        ),
        ("unknown-suite-short", _with_e2e(ascii_doc, "xyz"), ["A"], APP, "UnknownSuite"),
        ("wrong-part-count", _with_e2e(ascii_doc, f"ep1.{kid}.{nonce}"), ["A"], APP, "BadEnvelope"),
        ("e2e-not-a-string", _with_e2e(ascii_doc, 12), ["A"], APP, "BadEnvelope"),
        (
            "noncanonical-b64u-trailing-bits",
            _with_e2e(ascii_doc, ".".join((suite, noncanon_kid, noncanon_nonce, ct))),
            ["A"],
            APP,
            "BadEnvelope",
        ),
        (
            "noncanonical-b64u-padding",
            _with_e2e(ascii_doc, ".".join((suite, kid + "=", nonce, ct))),
            ["A"],
            APP,
            "BadEnvelope",
        ),
        (
            "noncanonical-b64u-std-alphabet",
            _with_e2e(
                ascii_doc,
                ".".join(
                    (
                        suite,
                        kid,
                        nonce,
                        ct.replace("-", "+").replace("_", "/")
                        if ("-" in ct or "_" in ct)
                        else "+" + ct[1:],
                    )
                ),
            ),
            ["A"],
            APP,
            "BadEnvelope",
        ),
        (
            "b64u-whitespace",
            _with_e2e(ascii_doc, ".".join((suite, kid, nonce, ct[:10] + " " + ct[10:]))),
            ["A"],
            APP,
            "BadEnvelope",
        ),
        (
            "wrong-nonce-length",
            _with_e2e(ascii_doc, ".".join((suite, kid, nonce[:-4], ct))),
            ["A"],
            APP,
            "BadEnvelope",
        ),
        ("clear-field-beside-e2e", dict(ascii_doc, title="injected"), ["A"], APP, "BadEnvelope"),
        (
            "not-sealed",
            {"_id": "plain", "_rev": "1-a", "title": "plaintext"},
            ["A"],
            APP,
            "BadEnvelope",
        ),
        (
            "bad-padding-no-marker",
            {"_id": "p", "e2e": _seal_raw("A", "p", bytes(256), 1)},
            ["A"],
            APP,
            "BadEnvelope",
        ),
        (
            "bad-padding-nonzero-after-marker",
            {"_id": "p", "e2e": _seal_raw("A", "p", body_small + b"\x80\x01" + bytes(247), 2)},
            ["A"],
            APP,
            "BadEnvelope",
        ),
        (
            "bad-padding-overpadded",
            {"_id": "p", "e2e": _seal_raw("A", "p", body_small + b"\x80" + bytes(504), 3)},
            ["A"],
            APP,
            "BadEnvelope",
        ),
        (
            "bad-padding-not-block-multiple",
            {"_id": "p", "e2e": _seal_raw("A", "p", body_small + b"\x80" + bytes(100), 4)},
            ["A"],
            APP,
            "BadEnvelope",
        ),
        (
            "body-not-object",
            {"_id": "p", "e2e": _seal_raw("A", "p", padding.pad(b"[1,2]"), 5)},
            ["A"],
            APP,
            "BadEnvelope",
        ),
        (
            "body-not-json",
            {"_id": "p", "e2e": _seal_raw("A", "p", padding.pad(b"{nope"), 6)},
            ["A"],
            APP,
            "BadEnvelope",
        ),
        (
            "body-with-underscore-field",
            {"_id": "p", "e2e": _seal_raw("A", "p", padding.pad(b'{"_id":"q"}'), 7)},
            ["A"],
            APP,
            "BadEnvelope",
        ),
        (
            "body-not-utf8",
            {"_id": "p", "e2e": _seal_raw("A", "p", padding.pad(b'{"a":"\xff"}'), 8)},
            ["A"],
            APP,
            "BadEnvelope",
        ),
    ]
    att_doc = stored["attachments"]
    names = list(att_doc["_attachments"])
    tampered = json.loads(json.dumps(att_doc))
    blob = bytearray(base64.b64decode(tampered["_attachments"][names[0]]["data"]))
    blob[-1] ^= 0x01
    tampered["_attachments"][names[0]]["data"] = base64.b64encode(bytes(blob)).decode()
    renamed = json.loads(json.dumps(att_doc))
    renamed["_attachments"]["0" * 32] = renamed["_attachments"].pop(names[0])
    dropped = json.loads(json.dumps(att_doc))
    del dropped["_attachments"][names[1]]
    swapped = json.loads(json.dumps(att_doc))
    a0, a1 = swapped["_attachments"][names[0]], swapped["_attachments"][names[2]]
    swapped["_attachments"][names[0]], swapped["_attachments"][names[2]] = a1, a0
    cases += [
        ("attachment-flipped-byte", tampered, ["A"], APP, "AuthenticationFailed"),
        ("attachment-renamed", renamed, ["A"], APP, "BadEnvelope"),
        ("attachment-dropped", dropped, ["A"], APP, "BadEnvelope"),
        ("attachments-swapped", swapped, ["A"], APP, "AuthenticationFailed"),
    ]
    return [{"name": n, "stored": d, "keys": k, "app_id": a, "error": e} for n, d, k, a, e in cases]
