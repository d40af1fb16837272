import base64
import hashlib
import hmac

import jwt

from gateway.config import load_settings
from gateway.upstream.member_auth import (
    JWT_LIFETIME_S,
    JWT_REUSE_S,
    PROXY_ROLES_HEADER,
    PROXY_TOKEN_HEADER,
    PROXY_USER_HEADER,
    member_headers,
    proxy_token,
)

JWT_SECRET = "a-jwt-secret-of-at-least-32-bytes!!"
BASE = {
    "COUCHGATE_UPSTREAM_URL": "http://db:5984",
    "COUCHGATE_SECRET_KEYS": "k" * 32,
    "COUCHGATE_UPSTREAM_USER": "admin",
    "COUCHGATE_UPSTREAM_PASSWORD": "pw",
}


def test_jwt_mode_sends_a_short_lived_hs256_token_for_the_member() -> None:
    settings = load_settings(
        env={
            **BASE,
            "COUCHGATE_UPSTREAM_AUTH": "jwt",
            "COUCHGATE_UPSTREAM_JWT_SECRET": JWT_SECRET,
            "COUCHGATE_UPSTREAM_JWT_KID": "cg",
        }
    )
    headers = member_headers(settings, "uabc", now=1_800_000_000)
    scheme, token = headers["Authorization"].split(" ")
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": "cg", "typ": "JWT"}
    claims = jwt.decode(
        token, JWT_SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
    )
    assert claims == {
        "sub": "uabc",
        "iat": 1_800_000_000,
        "exp": 1_800_000_000 + JWT_LIFETIME_S,
        "_couchdb.roles": [],
    }
    assert set(headers) == {"Authorization"}


def test_a_token_is_reused_within_its_window_and_always_has_time_to_live() -> None:
    settings = load_settings(
        env={**BASE, "COUCHGATE_UPSTREAM_AUTH": "jwt", "COUCHGATE_UPSTREAM_JWT_SECRET": JWT_SECRET}
    )
    start = 1_800_000_000
    tokens = {
        now: member_headers(settings, "uabc", now)["Authorization"]
        for now in range(start, start + 3 * JWT_REUSE_S)
    }
    assert len(set(tokens.values())) == 3  # one per window
    for now, header in tokens.items():
        claims = jwt.decode(
            header.split(" ")[1],
            JWT_SECRET,
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_iat": False},
        )
        assert claims["iat"] <= now and claims["exp"] - now >= JWT_LIFETIME_S - JWT_REUSE_S
    other = member_headers(settings, "uother", start)["Authorization"]
    assert other != tokens[start]


def test_proxy_mode_sends_couchdbs_three_headers_with_an_hmac_sha256() -> None:
    settings = load_settings(
        env={
            **BASE,
            "COUCHGATE_UPSTREAM_AUTH": "proxy",
            "COUCHGATE_UPSTREAM_PROXY_SECRET": "proxysecret",
        }
    )
    headers = member_headers(settings, "uabc", now=0)
    assert headers == {
        PROXY_USER_HEADER: "uabc",
        PROXY_ROLES_HEADER: "",
        PROXY_TOKEN_HEADER: hmac.new(b"proxysecret", b"uabc", hashlib.sha256).hexdigest(),
    }
    assert PROXY_USER_HEADER == "X-Auth-CouchDB-UserName"
    assert PROXY_TOKEN_HEADER == "X-Auth-CouchDB-Token"
    # A known answer, so a change of algorithm cannot pass unnoticed.
    assert (
        proxy_token("secret", "bob")
        == "9c90819f883772660da011f41042fabea4a174e2873386b30949f106dbac797e"
    )


def test_admin_mode_sends_the_service_admin() -> None:
    settings = load_settings(env=BASE)
    expected = "Basic " + base64.b64encode(b"admin:pw").decode()
    assert member_headers(settings, "uabc", now=0) == {"Authorization": expected}
