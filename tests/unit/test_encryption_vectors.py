"""The shared known-answer vectors (encryption_plugin/vectors/ep1.json), checked from Python.

The JavaScript plugin runs the same file (encryption_plugin/js/test/vectors.test.mjs).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import encryption_plugin as ep
from encryption_plugin import _rng, derivations, padding
from encryption_plugin.attachments import attachment_ad
from encryption_plugin.codec import b64u_decode, b64u_encode
from encryption_plugin.envelope import doc_ad, encode_body
from encryption_plugin.export import parse_export
from encryption_plugin.ids import id_for
from encryption_plugin.keys import KeySet, derive_subkey, fingerprint_of
from encryption_plugin.wrap import _open_record, _parse_record, derive_kek, wrap_ad

VECTORS: dict[str, Any] = json.loads(
    (Path(ep.__file__).parent / "vectors" / "ep1.json").read_text(encoding="utf-8")
)
ROOTS = {k["name"]: bytes.fromhex(k["root"]) for k in VECTORS["keys"]}


def ring(app_id: str, names: list[str]) -> ep.Keyring:
    keyring = ep.Keyring(app_id, ROOTS[names[0]])
    for name in names[1:]:
        keyring.add(ROOTS[name])
    return keyring


def replay(draws: list[str]) -> Callable[[int], bytes]:
    pending = [bytes.fromhex(d) for d in draws]

    def source(n: int) -> bytes:
        assert pending, "more random draws than the vector recorded"
        out = pending.pop(0)
        assert len(out) == n, "random draws out of order"
        return out

    return source


def ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for c in cases]


def test_padding_rule_text_is_the_docstring() -> None:
    assert VECTORS["padding"]["rule"] == padding.__doc__


@pytest.mark.parametrize("case", VECTORS["padding"]["positive"], ids=str)
def test_padding_lengths(case: dict[str, int]) -> None:
    assert padding.padded_length(case["body_length"]) == case["padded_length"]


@pytest.mark.parametrize(
    "case", VECTORS["padding"]["negative"], ids=ids(VECTORS["padding"]["negative"])
)
def test_padding_negative(case: dict[str, str]) -> None:
    with pytest.raises(ep.BadEnvelope, match="padding"):
        padding.unpad(bytes.fromhex(case["padded"]))


@pytest.mark.parametrize("case", VECTORS["b64u"]["positive"], ids=str)
def test_b64u_positive(case: dict[str, str]) -> None:
    assert b64u_decode(case["text"]).hex() == case["hex"]
    assert b64u_encode(bytes.fromhex(case["hex"])) == case["text"]


@pytest.mark.parametrize("case", VECTORS["b64u"]["negative"], ids=repr)
def test_b64u_negative(case: dict[str, str]) -> None:
    with pytest.raises(ep.BadEnvelope):
        b64u_decode(case["text"])


@pytest.mark.parametrize("case", VECTORS["keys"], ids=ids(VECTORS["keys"]))
def test_keys(case: dict[str, Any]) -> None:
    root = bytes.fromhex(case["root"])
    keys = KeySet.from_root(root)
    assert keys.doc.hex() == case["k_doc"]
    assert keys.att.hex() == case["k_att"]
    assert keys.idmac.hex() == case["k_idmac"]
    assert derive_subkey(root, 4, 16).hex() == case["kid16"]
    assert keys.kid.hex() == case["kid"] == case["kid16"][:16]
    assert fingerprint_of(keys.kid) == case["fingerprint"]
    keyring = ep.Keyring(case["app_id"], root)
    assert keyring.export() == case["export"]
    assert keyring.export_base32() == case["export_base32"]
    assert keyring.fingerprint() == case["fingerprint"]


@pytest.mark.parametrize("case", VECTORS["documents"], ids=ids(VECTORS["documents"]))
def test_document_pieces(case: dict[str, Any]) -> None:
    keyring = ring(case["app_id"], case["keys"])
    body = {k: v for k, v in case["doc"].items() if not k.startswith("_")}
    if "attachments" in case:
        body["$att"] = {
            a["stored_name"]: {
                "name": a["name"],
                "type": case["doc"]["_attachments"][a["name"]]["content_type"],
                "length": len(a["plaintext"]) // 2,
            }
            for a in case["attachments"]
        }
    assert encode_body(body).hex() == case["body"]
    assert padding.pad(bytes.fromhex(case["body"])).hex() == case["padded"]
    assert doc_ad(keyring.kid, case["app_id"], case["doc"]["_id"]).hex() == case["ad"]
    for att in case.get("attachments", []):
        ad = attachment_ad(keyring.kid, case["app_id"], case["doc"]["_id"], att["stored_name"])
        assert ad.hex() == att["ad"]
        blob = bytes.fromhex(att["blob"])
        assert blob[:24].hex() == att["nonce"]
        opened = ep.open_attachment(
            blob, keyring, doc_id=case["doc"]["_id"], name=att["stored_name"], kid=keyring.kid
        )
        assert opened.hex() == att["plaintext"]


@pytest.mark.parametrize("case", VECTORS["documents"], ids=ids(VECTORS["documents"]))
def test_document_seal_reproduces_stored(case: dict[str, Any]) -> None:
    keyring = ring(case["app_id"], case["keys"])
    with _rng._replay(replay(case["random"])):
        assert ep.seal_doc(case["doc"], keyring) == case["stored"]


@pytest.mark.parametrize("case", VECTORS["documents"], ids=ids(VECTORS["documents"]))
def test_document_open(case: dict[str, Any]) -> None:
    # Open with a keyring whose *active* key is A: documents sealed by B open by kid.
    keyring = ring(case["app_id"], sorted(case["keys"]))
    assert ep.open_doc(case["stored"], keyring) == case["doc"]


@pytest.mark.parametrize("case", VECTORS["attachment_stubs"], ids=ids(VECTORS["attachment_stubs"]))
def test_attachment_stubs_open(case: dict[str, Any]) -> None:
    keyring = ring(case["app_id"], case["keys"])
    assert ep.open_doc(case["stored"], keyring) == case["opened"]
    index = ep.attachment_index(case["stored"], keyring)
    assert sorted(index) == sorted(case["opened"]["_attachments"])
    assert {i.stored_name for i in index.values()} == set(case["stored"]["_attachments"])


@pytest.mark.parametrize("case", VECTORS["passthrough"], ids=ids(VECTORS["passthrough"]))
def test_passthrough(case: dict[str, Any]) -> None:
    keyring = ring("notes", ["A"])
    assert ep.seal_doc(case["doc"], keyring) == case["doc"]
    if case["name"] != "already-sealed":
        assert ep.open_doc(case["doc"], keyring) == case["doc"]


@pytest.mark.parametrize(
    "case", VECTORS["negative_documents"], ids=ids(VECTORS["negative_documents"])
)
def test_negative_documents(case: dict[str, Any]) -> None:
    keyring = ring(case["app_id"], case["keys"])
    with pytest.raises(getattr(ep, case["error"])) as info:
        ep.open_doc(case["stored"], keyring)
    assert type(info.value).__name__ == case["error"]


@pytest.mark.parametrize("case", VECTORS["ids"], ids=ids(VECTORS["ids"]))
def test_ids(case: dict[str, Any]) -> None:
    keyring = ring(case["app_id"], case["keys"])
    assert id_for(case["natural_key"], keyring) == case["id"]


def derive(case: dict[str, Any], keyring: ep.Keyring) -> str | int:
    """Call the derivation a vector names with its arguments (a chunk's piece is hex)."""
    args = [bytes.fromhex(v) if k == "piece" else v for k, v in case["args"].items()]
    value: str | int = getattr(derivations, case["function"])(*args, keyring)
    return value


DERIVED = VECTORS["derivations"]


@pytest.mark.parametrize("case", DERIVED["positive"], ids=ids(DERIVED["positive"]))
def test_derivations(case: dict[str, Any]) -> None:
    keyring = ring(case["app_id"], case["keys"])
    if case["function"] == "cutter_seed":
        subkey = derive_subkey(ROOTS[case["keys"][0]], derivations.CUTTER_SEED_SUBKEY, 8)
        assert subkey.hex() == case["subkey"]
        assert derive(case, keyring) == int(case["seed"])
    else:
        assert derive(case, keyring) == case["id"]
        # The ids existing vaults hold: the plain keyed id of the natural key.
        assert id_for(case["natural_key"], keyring) == case["id"]


@pytest.mark.parametrize("case", DERIVED["negative"], ids=ids(DERIVED["negative"]))
def test_derivations_refuse(case: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        derive(case, ring("notes", ["A"]))


@pytest.mark.parametrize(
    "case", VECTORS["exports"]["positive"], ids=ids(VECTORS["exports"]["positive"])
)
def test_exports(case: dict[str, Any]) -> None:
    assert parse_export(case["text"]) == (case["app_id"], bytes.fromhex(case["root"]))
    keyring = ep.Keyring.from_export(case["text"])
    assert keyring.app_id == case["app_id"]


@pytest.mark.parametrize(
    "case", VECTORS["exports"]["negative"], ids=ids(VECTORS["exports"]["negative"])
)
def test_exports_negative(case: dict[str, Any]) -> None:
    with pytest.raises(getattr(ep, case["error"])) as info:
        ep.Keyring.from_export(case["text"])
    assert type(info.value).__name__ == case["error"]


@pytest.mark.parametrize(
    "case", VECTORS["wraps"]["positive"], ids=ids(VECTORS["wraps"]["positive"])
)
def test_wraps(case: dict[str, Any]) -> None:
    salt = bytes.fromhex(case["salt"])
    kek = derive_kek(case["passphrase"], salt, case["ops"], case["mem"])
    assert kek.hex() == case["kek"]
    keys = KeySet.from_root(bytes.fromhex(case["root"]))
    assert wrap_ad(keys.kid, case["app_id"], case["ops"], case["mem"], salt).hex() == case["ad"]
    # Below the public API's parameter floor, so the cheap vector is opened through the seam.
    opened = _open_record(_parse_record(case["record"]), case["passphrase"], case["app_id"])
    assert opened.export() == ep.Keyring(case["app_id"], bytes.fromhex(case["root"])).export()
    if case["unwrap"] == "ok":
        keyring = ep.unwrap(case["record"], case["passphrase"], app_id=case["app_id"])
        assert keyring.kid == keys.kid
    else:
        with pytest.raises(getattr(ep, case["unwrap"])):
            ep.unwrap(case["record"], case["passphrase"], app_id=case["app_id"])


@pytest.mark.parametrize(
    "case", VECTORS["wraps"]["negative"], ids=ids(VECTORS["wraps"]["negative"])
)
def test_wraps_negative(case: dict[str, Any]) -> None:
    with pytest.raises(getattr(ep, case["error"])) as info:
        ep.unwrap(case["record"], case["passphrase"], app_id=case["app_id"])
    assert type(info.value).__name__ == case["error"]


def test_vectors_are_current() -> None:
    """The committed file is exactly what the generator writes today."""
    from encryption_plugin.vectors.generate import build

    assert json.loads(json.dumps(build(), ensure_ascii=False)) == VECTORS


def test_stub_digest_field_is_base64() -> None:
    # Guard against a generator change that would make the stub vector unrealistic.
    for att in VECTORS["attachment_stubs"][0]["stored"]["_attachments"].values():
        assert base64.b64decode(att["digest"].removeprefix("md5-"), validate=True)
