"""Round-trips, tamper detection and API behaviour of encryption_plugin beyond the vectors."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import encryption_plugin as ep
from encryption_plugin import envelope, padding
from encryption_plugin.codec import b64u_decode, b64u_encode

KEYRING = ep.Keyring.generate("notes")

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
body_keys = st.text(min_size=1, max_size=12).filter(lambda k: not k.startswith("_") and k != "$att")
# st.text() never yields surrogates, so every id encodes to UTF-8 (as CouchDB ids must).
doc_ids = st.text(min_size=1, max_size=30).filter(lambda s: not s.startswith("_"))


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": draw(doc_ids)}
    if draw(st.booleans()):
        doc["_rev"] = "1-" + "a" * 32
    doc.update(draw(st.dictionaries(body_keys, json_values, max_size=6)))
    return doc


@settings(max_examples=150, deadline=None)
@given(documents())
def test_seal_open_round_trip(doc: dict[str, Any]) -> None:
    sealed = ep.seal_doc(doc, KEYRING)
    assert [k for k in sealed if not k.startswith("_")] == ["e2e"]
    assert ep.open_doc(sealed, KEYRING) == doc
    assert ep.seal_doc(sealed, KEYRING) == sealed  # idempotent


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=10), st.binary(max_size=300), max_size=3))
def test_attachments_round_trip(files: dict[str, bytes]) -> None:
    doc = {
        "_id": "files",
        "_attachments": {n: {"content_type": "text/x-test", "data": d} for n, d in files.items()},
    }
    sealed = ep.seal_doc(doc, KEYRING)
    opened = ep.open_doc(sealed, KEYRING)
    for name, data in files.items():
        assert base64.b64decode(opened["_attachments"][name]["data"]) == data
        assert opened["_attachments"][name]["content_type"] == "text/x-test"
    for name in sealed.get("_attachments", {}):
        assert name not in files


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=10_000))
def test_padding_round_trip(body: bytes) -> None:
    padded = padding.pad(body)
    assert len(padded) == padding.padded_length(len(body))
    assert len(padded) % 256 == 0
    assert padding.unpad(padded) == body


@given(st.binary(max_size=64))
def test_b64u_round_trip(data: bytes) -> None:
    assert b64u_decode(b64u_encode(data)) == data


def _b64u_by_definition(text: str) -> bytes | str:
    """Strict base64url as the format defines it: only the URL-safe alphabet, no padding, a
    length a whole number of bytes can have, and the one spelling encoding gives the bytes.
    The refusal's words, or the bytes."""
    if re.fullmatch(r"[A-Za-z0-9_-]*", text) is None or len(text) % 4 == 1:
        return "field is not base64url"
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != text:
        return "field is not canonical base64url"
    return data


B64_ISH = "AQgw_-+/=\n \t.é\x00" + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@settings(max_examples=1000)
@given(st.text(alphabet=B64_ISH, max_size=12) | st.binary(max_size=12).map(b64u_encode))
def test_b64u_decode_is_the_definition(text: str) -> None:
    """The decoder every opened document goes through (no regular expression, no encoding
    back) refuses and accepts exactly what the definition does."""
    try:
        got: bytes | str = b64u_decode(text)
    except ep.BadEnvelope as exc:
        got = str(exc)
    assert got == _b64u_by_definition(text)


def _json_encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


@settings(max_examples=500)
@given(
    st.dictionaries(
        st.text(max_size=12),
        st.text() | st.integers(-(2**63), 2**64 - 1) | st.booleans(),
        max_size=8,
    )
)
def test_a_flat_body_encodes_as_json_writes_it(body: dict[str, Any]) -> None:
    """Note bodies take ``orjson``'s fast path: byte for byte what ``json`` writes."""
    assert envelope.encode_body(body) == _json_encoded(body)


@pytest.mark.parametrize(
    "body", [{"n": 2**64}, {"n": -(2**63) - 1}, {"x": [1, {"y": "z"}]}, {"f": 0.5}], ids=repr
)
def test_bodies_off_the_fast_path_encode_as_json_writes_them(body: dict[str, Any]) -> None:
    assert envelope.encode_body(body) == _json_encoded(body)


@pytest.mark.parametrize("body", [{"x": "\ud800"}, {"\udfff": 1}], ids=repr)
def test_a_lone_surrogate_is_refused_as_before(body: dict[str, Any]) -> None:
    with pytest.raises(UnicodeEncodeError):
        envelope.encode_body(body)


def _flip(text: str, index: int) -> str:
    raw = bytearray(b64u_decode(text))
    raw[index] ^= 0x01
    return b64u_encode(bytes(raw))


def test_every_ciphertext_byte_is_authenticated() -> None:
    sealed = ep.seal_doc({"_id": "t", "secret": "x" * 20}, KEYRING)
    suite, kid, nonce, ct = sealed["e2e"].split(".")
    for i in range(len(b64u_decode(ct))):
        with pytest.raises(ep.AuthenticationFailed):
            ep.open_doc(dict(sealed, e2e=".".join((suite, kid, nonce, _flip(ct, i)))), KEYRING)
    for i in range(24):
        with pytest.raises(ep.AuthenticationFailed):
            ep.open_doc(dict(sealed, e2e=".".join((suite, kid, _flip(nonce, i), ct))), KEYRING)
    for i in range(8):
        with pytest.raises(ep.UnknownKey):
            ep.open_doc(dict(sealed, e2e=".".join((suite, _flip(kid, i), nonce, ct))), KEYRING)


def test_every_attachment_byte_is_authenticated() -> None:
    sealed = ep.seal_doc(
        {"_id": "t", "_attachments": {"a": {"content_type": "x/y", "data": b"payload"}}}, KEYRING
    )
    (stored,) = sealed["_attachments"]
    blob = base64.b64decode(sealed["_attachments"][stored]["data"])
    for i in range(len(blob)):
        tampered = copy.deepcopy(sealed)
        flipped = bytearray(blob)
        flipped[i] ^= 0x80
        tampered["_attachments"][stored]["data"] = base64.b64encode(bytes(flipped)).decode()
        with pytest.raises(ep.AuthenticationFailed):
            ep.open_doc(tampered, KEYRING)


def test_two_seals_differ() -> None:
    doc = {"_id": "same", "v": 1}
    assert ep.seal_doc(doc, KEYRING)["e2e"] != ep.seal_doc(doc, KEYRING)["e2e"]


def test_rotation_opens_old_and_seals_new() -> None:
    keyring = ep.Keyring.generate("notes")
    old_kid = keyring.kid
    old = ep.seal_doc({"_id": "a", "v": 1}, keyring)
    new_kid = keyring.rotate()
    assert new_kid != old_kid and keyring.kid == new_kid and len(keyring) == 2
    assert ep.open_doc(old, keyring)["v"] == 1
    resealed = ep.seal_doc(ep.open_doc(old, keyring), keyring)
    assert resealed["e2e"].split(".")[1] == b64u_encode(new_kid)
    only_old = ep.Keyring.from_export(ep.Keyring(keyring.app_id, b"\x00" * 32).export())
    with pytest.raises(ep.UnknownKey):
        ep.open_doc(resealed, only_old)


def test_keyring_merge_and_activate() -> None:
    a = ep.Keyring.generate("notes")
    b = ep.Keyring.generate("notes")
    sealed_b = ep.seal_doc({"_id": "x", "v": 2}, b)
    a.add(b)
    assert ep.open_doc(sealed_b, a)["v"] == 2
    a.activate(b.kid)
    assert a.kid == b.kid
    with pytest.raises(ValueError):
        a.add(ep.Keyring.generate("other"))


def test_keyring_repr_has_no_secret() -> None:
    keyring = ep.Keyring.generate("notes")
    root_b64 = keyring.export().rsplit(":", 1)[1]
    assert root_b64[5:20] not in repr(keyring)
    assert "root" not in repr(keyring.active_keys())


def test_export_round_trip_and_app_check() -> None:
    keyring = ep.Keyring.generate("notes")
    again = ep.Keyring.from_export(keyring.export_base32(), app_id="notes")
    assert again.kid == keyring.kid and again.fingerprint() == keyring.fingerprint()
    with pytest.raises(ep.UnknownKey):
        ep.Keyring.from_export(keyring.export(), app_id="todo")


def test_sealing_refusals() -> None:
    with pytest.raises(ValueError, match="reserved"):
        ep.seal_doc({"_id": "x", "$att": {}}, KEYRING)
    with pytest.raises(ValueError, match="stub"):
        ep.seal_doc({"_id": "x", "_attachments": {"a": {"stub": True}}}, KEYRING)
    with pytest.raises(ValueError, match="_id"):
        ep.seal_doc({"v": 1}, KEYRING)
    with pytest.raises(ValueError, match="16 MiB"):
        ep.seal_attachment(bytes(ep.MAX_ATTACHMENT_BYTES + 1), KEYRING, doc_id="x", name="n")
    with pytest.raises(ValueError, match="app_id"):
        ep.Keyring.generate("Not Valid")


def test_attachment_stub_fetch_flow() -> None:
    sealed = ep.seal_doc(
        {
            "_id": "d",
            "_attachments": {"r.pdf": {"content_type": "application/pdf", "data": b"%PDF"}},
        },
        KEYRING,
    )
    info = ep.attachment_index(sealed, KEYRING)["r.pdf"]
    assert (info.content_type, info.length) == ("application/pdf", 4)
    blob = base64.b64decode(sealed["_attachments"][info.stored_name]["data"])
    assert ep.open_attachment(blob, KEYRING, doc_id="d", name=info.stored_name, kid=info.kid) == (
        b"%PDF"
    )
    with pytest.raises(ep.AuthenticationFailed):
        ep.open_attachment(blob, KEYRING, doc_id="other", name=info.stored_name, kid=info.kid)


def test_id_for_is_stable_and_keyed() -> None:
    assert ep.id_for("cafe\u0301", KEYRING) == ep.id_for("caf\u00e9", KEYRING)
    assert ep.id_for("k", KEYRING) != ep.id_for("k", ep.Keyring.generate("notes"))
    assert ep.id_for("k", KEYRING).startswith("h") and len(ep.id_for("k", KEYRING)) == 23


def test_wrap_refuses_weak_parameters_before_work() -> None:
    with pytest.raises(ep.WeakParameters):
        ep.wrap(KEYRING, "pw", ops=2)
    with pytest.raises(ep.WeakParameters):
        ep.wrap(KEYRING, "pw", mem=32 * 1024 * 1024)


async def test_wrap_async_runs_off_the_event_loop() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        record = await ep.wrap_async(KEYRING, "correct horse")
        keyring = await ep.unwrap_async(record, "correct horse", app_id="notes")
    finally:
        task.cancel()
    assert keyring.kid == KEYRING.kid
    assert ticks > 5, "the event loop was blocked during Argon2id"
    with pytest.raises(ep.AuthenticationFailed):
        await ep.unwrap_async(record, "wrong horse", app_id="notes")
