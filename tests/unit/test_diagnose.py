"""``couchgate check``'s comparisons with CouchDB's configuration, on the values CouchDB 3.x
shows at /_node/_local/_config (no CouchDB runs here: see tests/integration for the rest)."""

from __future__ import annotations

import base64

from gateway.config import Settings, load_settings
from gateway.upstream.diagnose import Finding, _jwt_key, _proxy_secret, _sizes

SECRET = "j" * 40
PROXY = "p" * 40


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "secret_keys": "k" * 32,
        "upstream_url": "http://couchdb:5984",
        **overrides,
    }
    return load_settings(env={}, overrides=values)


def lines(findings: list[Finding]) -> list[str]:
    return [f.line() for f in findings]


def test_the_jwt_key_must_be_couchgates_secret_in_base64() -> None:
    s = settings(upstream_auth="jwt", upstream_jwt_secret=SECRET)
    good = base64.b64encode(SECRET.encode()).decode()
    assert lines(_jwt_key(s, good)) == [
        "ok: CouchDB's [jwt_keys] hmac:_default matches couchgate's JWT secret"
    ]
    fix = (
        "; fix: set [jwt_keys] hmac:_default to the base64 of COUCHGATE_UPSTREAM_JWT_SECRET "
        "(deploy/couchdb/jwt-entrypoint.sh does this from the environment)"
    )
    assert lines(_jwt_key(s, None)) == ["problem: CouchDB has no [jwt_keys] hmac:_default" + fix]
    assert lines(_jwt_key(s, SECRET + "!")) == [
        "problem: CouchDB's [jwt_keys] hmac:_default is not base64" + fix
    ]
    other = base64.b64encode(b"x" * 40).decode()
    assert lines(_jwt_key(s, other)) == [
        "problem: CouchDB's [jwt_keys] hmac:_default is not couchgate's JWT secret" + fix
    ]
    with_kid = settings(upstream_auth="jwt", upstream_jwt_secret=SECRET, upstream_jwt_kid="k1")
    assert "hmac:k1" in lines(_jwt_key(with_kid, None))[0]


def test_proxy_auth_needs_the_same_secret_and_the_secret_switched_on() -> None:
    s = settings(upstream_auth="proxy", upstream_proxy_secret=PROXY)
    assert lines(_proxy_secret(s, PROXY, "true")) == [
        "ok: CouchDB's proxy authentication secret matches couchgate's"
    ]
    found = lines(_proxy_secret(s, "other", "false"))
    assert [line.split(";")[0] for line in found] == [
        "problem: CouchDB's [chttpd_auth] secret is not couchgate's proxy secret",
        "problem: CouchDB takes X-Auth-CouchDB-UserName without its token: whoever reaches "
        "CouchDB can act as any user",
    ]
    assert found[1].endswith("fix: set [chttpd_auth] proxy_use_secret = true")


def test_size_limits_are_compared_with_couchdbs_and_its_defaults() -> None:
    s = settings(max_request_size=64 * 1024 * 1024)
    assert lines(_sizes(s, "67108864", "67108864")) == [
        "ok: request sizes: couchgate reads up to 67108864 bytes; CouchDB takes requests up to "
        "67108864 and documents up to 67108864"
    ]
    # CouchDB's default max_document_size (8000000) is below couchgate's default cap.
    found = lines(_sizes(s, None, None))
    assert found == [
        "problem: CouchDB refuses documents over 8000000 bytes, couchgate passes up to 67108864 "
        "(encrypted apps seal attachments inside their documents); fix: raise [couchdb] "
        "max_document_size to 67108864 or lower COUCHGATE_MAX_REQUEST_SIZE"
    ]
    assert lines(_sizes(s, "1048576", "67108864"))[0].startswith(
        "problem: CouchDB refuses requests over 1048576 bytes, couchgate passes up to 67108864"
    )
