"""The plaintext guard (encryption = required): what a sealed-only app may and may not write.

Valid envelopes and wrap records come from the real ``encryption_plugin``, so the guard is
checked against what devices actually send, not against a hand-written imitation.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import encryption_plugin as ep
from encryption_plugin.codec import b64u_encode
from gateway.errors import CouchError
from gateway.replication.policy import (
    ATTACHMENT_NOT_ENCRYPTED,
    NOT_ENCRYPTED,
    b64u_length,
    check_doc,
    looks_like_envelope,
    merge_bulk_results,
    split_bulk,
)

KEYRING = ep.Keyring.generate("notes")
KID = b64u_encode(KEYRING.kid)
REFUSED = {"error": "forbidden", "reason": NOT_ENCRYPTED}


@pytest.fixture(scope="module")
def wrap_record() -> dict[str, Any]:
    """A real record at the default (minimum) Argon2id cost; made once, it takes a moment."""
    return ep.wrap(KEYRING, "correct horse battery staple")


def sealed(doc_id: str, **body: Any) -> dict[str, Any]:
    return ep.seal_doc({"_id": doc_id, **body}, KEYRING)


def refusal(doc_id: str, doc: Any, *, multipart: bool = False) -> dict[str, str] | None:
    """``{"error", "reason"}`` of the refusal, or None when the document passes."""
    try:
        check_doc(doc_id, doc, encryption_required=True, multipart=multipart)
    except CouchError as exc:
        return {"error": exc.error, "reason": exc.reason}
    return None


def test_a_sealed_document_passes_with_its_underscore_fields() -> None:
    doc = sealed("a", title="secret")
    doc.update(_rev="2-" + "b" * 32, _revisions={"start": 2, "ids": ["b" * 32, "c" * 32]})
    assert refusal("a", doc) is None


def test_a_sealed_document_with_sealed_attachments_passes() -> None:
    doc = sealed("a", _attachments={"x.txt": {"content_type": "text/plain", "data": "aGk="}})
    assert set(doc["_attachments"]) != {"x.txt"}
    assert refusal("a", doc) is None


@pytest.mark.parametrize(
    "doc",
    [
        {"_id": "a", "title": "plain"},
        {"_id": "a"},  # not even an envelope: nothing says it was sealed
        {"_id": "a", "_attachments": {"x.txt": {"content_type": "text/plain", "data": "aGk="}}},
        {"_id": "a", "_deleted": True, "title": "plain"},
        {"_id": "a", "_deleted": True, "_attachments": {"x": {"stub": True}}},
        {"_id": "a", "_deleted": False},
    ],
)
def test_plaintext_is_refused(doc: dict[str, Any]) -> None:
    assert refusal("a", doc) == REFUSED


def test_an_envelope_beside_plaintext_is_refused() -> None:
    doc = sealed("a", title="secret")
    doc["title"] = "leaked"
    assert refusal("a", doc) == REFUSED


def test_bare_tombstones_pass() -> None:
    assert refusal("a", {"_id": "a", "_rev": "1-" + "f" * 32, "_deleted": True}) is None
    revisions = {"start": 2, "ids": ["b" * 32, "a" * 32]}
    assert refusal("a", {"_id": "a", "_deleted": True, "_revisions": revisions}) is None


def test_local_documents_are_exempt() -> None:
    assert refusal("_local/abc", {"_id": "_local/abc", "last_seq": 12, "history": []}) is None


def test_design_documents_stay_refused_as_such() -> None:
    assert refusal("_design/x", sealed("_design/x")) == {
        "error": "forbidden",
        "reason": "design documents are not available through couchgate",
    }


def test_plaintext_is_fine_when_encryption_is_off() -> None:
    check_doc("a", {"_id": "a", "title": "plain"})
    check_doc("a", {"_id": "a", "title": "plain"}, encryption_required=False)


GOOD = sealed("a", title="x")["e2e"]
_, GOOD_KID, GOOD_NONCE, GOOD_CT = GOOD.split(".")


# Ids name the case: the values hold a fresh random seal, and test ids must be the same in every
# process that collects them (pytest-xdist compares them).
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param(42, id="number"),
        pytest.param({"ep1": "x"}, id="object"),
        pytest.param("", id="empty"),
        pytest.param("ep1", id="prefix-only"),
        pytest.param("plain text", id="plain"),
        pytest.param(f"ep2.{GOOD_KID}.{GOOD_NONCE}.{GOOD_CT}", id="other-version"),
        pytest.param(f"EP1.{GOOD_KID}.{GOOD_NONCE}.{GOOD_CT}", id="upper-case"),
        pytest.param(f"ep1.{GOOD_KID}.{GOOD_NONCE}", id="no-ciphertext"),
        pytest.param(f"ep1.{GOOD_KID}.{GOOD_NONCE}.{GOOD_CT}.more", id="five-parts"),
        pytest.param(f"ep1.{GOOD_KID}A.{GOOD_NONCE}.{GOOD_CT}", id="9-byte-kid"),
        pytest.param(f"ep1.{GOOD_KID}.{GOOD_NONCE[:-4]}.{GOOD_CT}", id="short-nonce"),
        pytest.param(f"ep1.{GOOD_KID}.{GOOD_NONCE}.{'A' * 20}", id="shorter-than-a-tag"),
        pytest.param(f"ep1.{GOOD_KID}.{GOOD_NONCE}.{GOOD_CT}=", id="padding"),
        pytest.param(f"ep1.{GOOD_KID}.{GOOD_NONCE}.{GOOD_CT[:-1]}+", id="other-alphabet"),
        pytest.param(f"ep1.{GOOD_KID}.{GOOD_NONCE}.hello world, this is not ciphertext", id="text"),
    ],
)
def test_only_ep1_shaped_envelopes_count(value: object) -> None:
    assert not looks_like_envelope(value)
    assert refusal("a", {"_id": "a", "e2e": value}) == REFUSED


def test_envelope_shape_accepts_what_the_plugin_seals() -> None:
    assert looks_like_envelope(GOOD)
    assert looks_like_envelope(sealed("b", big="y" * 100_000)["e2e"])


@given(st.binary(max_size=64))
def test_b64u_length_is_the_decoded_length_of_canonical_text(data: bytes) -> None:
    text = b64u_encode(data)
    assert b64u_length(text) == len(data)
    assert b64u_length(text + "=") is None


def test_b64u_length_refuses_non_canonical_spellings() -> None:
    assert b64u_length("AB") is None  # 'B' leaves stray low bits: 'AA' is the canonical spelling
    assert b64u_length("AA") == 1
    assert b64u_length("A") is None
    assert b64u_length("a+b/") is None
    assert b64u_length(None) is None


# -- the key wrap record ------------------------------------------------------------------------


def test_a_wrap_record_is_accepted_under_its_own_id(wrap_record: dict[str, Any]) -> None:
    doc_id = f"ep1-keywrap-{KID}"
    assert wrap_record["kid"] == KID
    assert refusal(doc_id, {"_id": doc_id, **wrap_record}) is None
    assert refusal(doc_id, {"_id": doc_id, "_rev": "1-" + "a" * 32, **wrap_record}) is None


def test_a_wrap_record_under_any_other_id_is_plaintext(wrap_record: dict[str, Any]) -> None:
    assert refusal("a", {"_id": "a", **wrap_record}) == REFUSED
    assert refusal("ep1-keywrap", {"_id": "ep1-keywrap", **wrap_record}) == REFUSED


def test_the_kid_in_the_id_must_be_the_records(wrap_record: dict[str, Any]) -> None:
    other = b64u_encode(ep.Keyring.generate("notes").kid)
    doc_id = f"ep1-keywrap-{other}"
    assert refusal(doc_id, {"_id": doc_id, **wrap_record}) == {
        "error": "forbidden",
        "reason": "not a valid ep1w key wrap record: "
        "the kid in the document id does not match the record",
    }


def test_a_sealed_document_is_not_a_wrap_record() -> None:
    doc_id = f"ep1-keywrap-{KID}"
    found = refusal(doc_id, sealed(doc_id, note="x"))
    assert found is not None and found["reason"].startswith("not a valid ep1w key wrap record")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"hint": "my dog's name"}, "expected exactly the fields"),
        ({"v": "ep2w"}, "v must be ep1w"),
        ({"kdf": "scrypt"}, "kdf argon2id13"),
        ({"ops": 2}, "ops must be"),
        ({"ops": 17}, "ops must be"),
        ({"ops": True}, "ops must be"),
        ({"ops": 3.0}, "ops must be"),
        ({"mem": 1024}, "mem must be"),
        ({"mem": 64 * 1024 * 1024 + 1}, "mem must be"),
        ({"mem": "67108864"}, "mem must be"),
        ({"salt": "AAAA"}, "salt must be 16 bytes"),
        ({"n": 7}, "n must be 24 bytes"),
        ({"c": "not base64url!"}, "c must be 48 bytes"),
        ({"kid": None}, "kid must be 8 bytes"),
    ],
)
def test_a_malformed_wrap_record_is_refused(
    wrap_record: dict[str, Any], change: dict[str, Any], problem: str
) -> None:
    doc_id = f"ep1-keywrap-{KID}"
    found = refusal(doc_id, {"_id": doc_id, **wrap_record, **change})
    assert found is not None and found["error"] == "forbidden"
    assert found["reason"].startswith("not a valid ep1w key wrap record: ")
    assert problem in found["reason"]


def test_a_missing_wrap_field_is_refused(wrap_record: dict[str, Any]) -> None:
    doc_id = f"ep1-keywrap-{KID}"
    partial = {k: v for k, v in wrap_record.items() if k != "c"}
    found = refusal(doc_id, {"_id": doc_id, **partial})
    assert found is not None and "expected exactly the fields" in found["reason"]


def test_a_wrap_record_can_be_deleted() -> None:
    doc_id = f"ep1-keywrap-{KID}"
    assert refusal(doc_id, {"_id": doc_id, "_rev": "1-" + "a" * 32, "_deleted": True}) is None


# -- attachments ------------------------------------------------------------------------------

STORED_NAME = "0123456789abcdef" * 2
OCTETS = "application/octet-stream"
SEALED_BYTES = base64.b64encode(bytes(40)).decode()  # a nonce and a tag: the least ep1 stores


def with_attachments(**attachments: Any) -> dict[str, Any]:
    """A well-formed sealed document carrying ``attachments`` as they are given."""
    return {**sealed("a", title="x"), "_attachments": attachments}


def attachment_refusal(
    doc: dict[str, Any], doc_id: str = "a", *, multipart: bool = False
) -> str | None:
    """The reason a document is refused for its attachments; fails on any other outcome."""
    found = refusal(doc_id, doc, multipart=multipart)
    if found is None:
        return None
    assert found["error"] == "forbidden"
    assert found["reason"].startswith(f"{ATTACHMENT_NOT_ENCRYPTED}: "), found
    return found["reason"]


def test_attachments_sealed_by_the_python_plugin_pass() -> None:
    doc = sealed(
        "a",
        _attachments={
            "diary.txt": {"content_type": "text/plain", "data": base64.b64encode(b"dear").decode()},
            "empty.bin": {"content_type": "x/y", "data": ""},
            "big.png": {
                "content_type": "image/png",
                "data": base64.b64encode(bytes(5000)).decode(),
            },
        },
    )
    stored = doc["_attachments"]
    assert len(stored) == 3 and all(re.fullmatch("[0-9a-f]{32}", name) for name in stored)
    assert {entry["content_type"] for entry in stored.values()} == {OCTETS}
    assert attachment_refusal(doc) is None


def test_stubs_and_multipart_parts_of_sealed_attachments_pass() -> None:
    """(In a multipart body: ``follows`` in a JSON body is a shape CouchDB cannot read,
    refused for every app, tests/integration/test_attachment_shapes.py.)"""
    digest = "md5-" + base64.b64encode(bytes(16)).decode()
    stub = {"content_type": OCTETS, "stub": True, "digest": digest, "length": 41, "revpos": 1}
    part = {"content_type": OCTETS, "follows": True, "length": 40, "digest": "md5-y"}
    other = "f" * 32
    both = with_attachments(**{STORED_NAME: stub, other: part})
    assert attachment_refusal(both, multipart=True) is None
    part_without_length = {"content_type": OCTETS, "follows": True}
    alone = with_attachments(**{STORED_NAME: part_without_length})
    assert attachment_refusal(alone, multipart=True) is None
    assert attachment_refusal({**sealed("a"), "_attachments": {}}) is None


def test_the_reproduction_of_a_plaintext_attachment_is_refused() -> None:
    diary = {"content_type": "text/plain", "data": base64.b64encode(b"my secret diary").decode()}
    reason = attachment_refusal(with_attachments(**{"diary.txt": diary}))
    assert reason is not None and "name" in reason


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        # a readable or foreign name, with a body that would otherwise pass
        ("diary.txt", {"content_type": OCTETS, "data": SEALED_BYTES}),
        ("0123456789ABCDEF" * 2, {"content_type": OCTETS, "data": SEALED_BYTES}),
        ("0123456789abcdef", {"content_type": OCTETS, "data": SEALED_BYTES}),
        ("0123456789abcdef" * 2 + "0", {"content_type": OCTETS, "data": SEALED_BYTES}),
        ("0123456789abcdef" * 2 + "\n", {"content_type": OCTETS, "data": SEALED_BYTES}),
        # a telling type, or none
        (STORED_NAME, {"content_type": "text/plain", "data": SEALED_BYTES}),
        (STORED_NAME, {"content_type": OCTETS + "; charset=utf-8", "data": SEALED_BYTES}),
        (STORED_NAME, {"data": SEALED_BYTES}),
        (STORED_NAME, {"content_type": "text/plain", "stub": True}),
        # inline data that is not ciphertext-sized strict base64
        (STORED_NAME, {"content_type": OCTETS, "data": base64.b64encode(bytes(39)).decode()}),
        (STORED_NAME, {"content_type": OCTETS, "data": ""}),
        (STORED_NAME, {"content_type": OCTETS, "data": "my secret diary, written out in clear"}),
        (STORED_NAME, {"content_type": OCTETS, "data": SEALED_BYTES + "\n"}),
        (STORED_NAME, {"content_type": OCTETS, "data": SEALED_BYTES.rstrip("=")}),
        (STORED_NAME, {"content_type": OCTETS, "data": SEALED_BYTES + "=="}),
        (STORED_NAME, {"content_type": OCTETS, "data": SEALED_BYTES.replace("A", "-")}),
        (STORED_NAME, {"content_type": OCTETS, "data": None}),
        (STORED_NAME, {"content_type": OCTETS, "data": [1, 2, 3]}),
        (STORED_NAME, {"content_type": OCTETS, "data": SEALED_BYTES, "encoding": "gzip"}),
        # multipart parts too short to hold a nonce and a tag, or compressed
        (STORED_NAME, {"content_type": OCTETS, "follows": True, "length": 39}),
        (STORED_NAME, {"content_type": OCTETS, "follows": True, "length": "400"}),
        (STORED_NAME, {"content_type": OCTETS, "follows": True, "length": True}),
        (STORED_NAME, {"content_type": OCTETS, "follows": True, "encoded_length": 3}),
        (STORED_NAME, {"content_type": OCTETS, "follows": True, "encoding": "gzip"}),
        # neither a stub, nor a part, nor data; or more than one of them
        (STORED_NAME, {"content_type": OCTETS}),
        (STORED_NAME, {"content_type": OCTETS, "stub": "yes"}),
        (STORED_NAME, {"content_type": OCTETS, "follows": 1, "length": 400}),
        (STORED_NAME, {"content_type": OCTETS, "stub": True, "data": SEALED_BYTES}),
        (STORED_NAME, {"content_type": OCTETS, "follows": True, "data": SEALED_BYTES}),
        (STORED_NAME, {"content_type": OCTETS, "stub": True, "follows": True}),
        # not an object
        (STORED_NAME, SEALED_BYTES),
        (STORED_NAME, None),
    ],
)
def test_an_attachment_not_stored_as_sealed_is_refused(name: str, entry: object) -> None:
    assert attachment_refusal(with_attachments(**{name: entry})) is not None


@pytest.mark.parametrize("attachments", [[], "x", None, 1, [{"content_type": OCTETS}]])
def test_attachments_must_be_an_object(attachments: object) -> None:
    reason = attachment_refusal({**sealed("a"), "_attachments": attachments})
    assert reason == f"{ATTACHMENT_NOT_ENCRYPTED}: _attachments must be an object"


def test_one_plaintext_attachment_among_sealed_ones_refuses_the_document() -> None:
    doc = sealed("a", _attachments={"x": {"content_type": "x/y", "data": SEALED_BYTES}})
    doc["_attachments"]["leak.txt"] = {"content_type": "text/plain", "data": "aGk="}
    assert attachment_refusal(doc) is not None


def test_a_wrap_record_cannot_carry_plaintext_attachments(wrap_record: dict[str, Any]) -> None:
    doc = {**wrap_record, "_attachments": {"hint.txt": {"content_type": "text/plain", "data": ""}}}
    assert refusal(f"ep1-keywrap-{KID}", wrap_record) is None
    assert attachment_refusal(doc, f"ep1-keywrap-{KID}") is not None


def test_attachments_are_free_when_encryption_is_off() -> None:
    doc = {
        "_id": "a",
        "_attachments": {"diary.txt": {"content_type": "text/plain", "data": "aGk="}},
    }
    check_doc("a", doc)


# -- _bulk_docs -------------------------------------------------------------------------------


def test_bulk_refuses_plaintext_one_by_one_in_place() -> None:
    docs = [sealed("a", n=1), {"_id": "b", "title": "plain"}, sealed("c", n=3)]
    kept, refused = split_bulk(docs, encryption_required=True)
    assert kept == [docs[0], docs[2]]
    upstream = [{"ok": True, "id": "a", "rev": "1-a"}, {"ok": True, "id": "c", "rev": "1-c"}]
    assert merge_bulk_results(docs, refused, upstream) == [
        upstream[0],
        {"id": "b", **REFUSED},
        upstream[1],
    ]


def test_bulk_with_encryption_off_keeps_plaintext() -> None:
    docs = [{"_id": "a", "title": "plain"}]
    assert split_bulk(docs) == (docs, {})


def test_bulk_refuses_design_and_plaintext_each_with_its_reason() -> None:
    docs = [
        {"_id": "_design/x", "views": {}},
        {"title": "no id"},
        {"_id": "_local/c", "last_seq": 1},
    ]
    kept, refused = split_bulk(docs, encryption_required=True)
    assert kept == [docs[2]]
    assert merge_bulk_results(docs, refused, [{"ok": True, "id": "_local/c", "rev": "0-1"}]) == [
        {
            "id": "_design/x",
            "error": "forbidden",
            "reason": "design documents are not available through couchgate",
        },
        {"id": "", **REFUSED},
        {"ok": True, "id": "_local/c", "rev": "0-1"},
    ]


def test_made_up_revision_ids_are_refused_even_on_tombstones() -> None:
    for revs in (
        {"_rev": "1-PLAINsecret"},
        {"_rev": "1-" + "a" * 32, "_revisions": {"start": 1, "ids": ["secret"]}},
        {"_rev": "9-" + "a" * 32, "_revisions": {"start": 2000, "ids": ["a" * 32] * 1001}},
    ):
        assert refusal("t", {"_id": "t", "_deleted": True, **revs}) is not None
