import pytest

from gateway.auth import tokens
from gateway.auth.identity import bearer_or_basic_secret
from gateway.auth.tokens import DeviceToken


def test_token_round_trips_and_only_its_hash_is_kept() -> None:
    token = DeviceToken.issue(tokens.new_uid(), tokens.new_device_id())
    assert DeviceToken.parse(str(token)) == token
    assert token.secret not in token.hash and len(token.hash) == 64


@pytest.mark.parametrize(
    "text",
    [
        "",
        "cg1",
        "cg1.a.b",
        "cg2.aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbb.x",
        "cg1.AAAAAAAAAAAAAAAA.bbbbbbbbbbbbbbbb.x",
        "cg1.aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbb.",
        "cg1.äaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbb.x",
        "cg1.aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbb.x.y",
    ],
)
def test_malformed_tokens_are_rejected(text: str) -> None:
    assert DeviceToken.parse(text) is None


def test_ids_and_codes_have_their_shapes() -> None:
    assert tokens.is_id(tokens.new_uid()) and tokens.is_id(tokens.new_device_id())
    code = tokens.new_email_code()
    assert len(code) == tokens.CODE_DIGITS and code.isdigit()
    grouped = tokens.new_grouped_code(5)
    assert len(grouped.split("-")) == 5
    assert tokens.code_lookup_key(grouped) == tokens.code_lookup_key(
        grouped.lower().replace("-", " ")
    )


def test_email_hmac_normalizes_and_depends_on_the_pepper() -> None:
    a = tokens.email_hmac(b"pepper", " Alice@Example.org ")
    assert a == tokens.email_hmac(b"pepper", "alice@example.org")
    assert a != tokens.email_hmac(b"other", "alice@example.org")
    assert "alice" not in a


def test_email_plausibility() -> None:
    assert tokens.is_email("a@b.example")
    assert (
        not tokens.is_email("a@b")
        and not tokens.is_email("no at sign")
        and not tokens.is_email("a @b.c")
    )


@pytest.mark.parametrize(
    ("header", "secret"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc ", "abc"),
        ("Basic " + __import__("base64").b64encode(b"anyone:tok:en").decode(), "tok:en"),
        ("Basic " + __import__("base64").b64encode(b"nopassword").decode(), None),
        ("Basic !!!", None),
        ("Digest x", None),
        (None, None),
        ("Bearer ", None),
    ],
)
def test_credentials_from_bearer_or_basic(header: str | None, secret: str | None) -> None:
    assert bearer_or_basic_secret(header) == secret


async def test_keyed_locks_serialize_one_key_and_forget_it_after() -> None:
    import asyncio

    from gateway.auth.records.base import KeyedLocks

    locks = KeyedLocks()
    inside: list[str] = []
    most = 0

    async def hold(key: str) -> None:
        nonlocal most
        async with locks.hold(key):
            inside.append(key)
            most = max(most, inside.count("a"))
            await asyncio.sleep(0)
            inside.remove(key)

    await asyncio.gather(*(hold("a") for _ in range(10)), hold("b"))
    assert most == 1
    assert len(locks) == 0
