from multidict import CIMultiDict, CIMultiDictProxy

from gateway.replication.stream import downstream_headers, upstream_headers


def _h(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def test_credentials_identity_headers_and_hop_by_hop_never_go_upstream() -> None:
    out = upstream_headers(
        _h(
            ("Authorization", "Bearer tok"),
            ("Cookie", "AuthSession=x"),
            ("X-Auth-CouchDB-UserName", "admin"),
            ("x-auth-couchdb-roles", "_admin"),
            ("X-Auth-CouchDB-Token", "t"),
            ("Connection", "keep-alive, X-Private"),
            ("X-Private", "1"),
            ("Keep-Alive", "5"),
            ("Transfer-Encoding", "chunked"),
            ("Accept-Encoding", "gzip"),
            ("Host", "gw"),
            ("Origin", "https://app"),
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            ("Content-Length", "12"),
            ("If-None-Match", '"1-a"'),
        )
    )
    assert sorted(out.keys()) == ["Accept", "Content-Length", "Content-Type", "If-None-Match"]


def test_cookies_banner_basic_challenge_and_upstream_cors_never_come_back() -> None:
    out = downstream_headers(
        _h(
            ("Set-Cookie", "AuthSession=x"),
            ("Server", "CouchDB/3.5.0 (Erlang OTP/26)"),
            ("WWW-Authenticate", 'Basic realm="server"'),
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Allow-Credentials", "true"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Type", "application/json"),
            ("ETag", '"1-a"'),
            ("Cache-Control", "must-revalidate"),
            ("X-Couch-Request-ID", "abc"),
            ("X-Powered-By", "Express"),
            ("Location", "http://couchdb:5984/uabc-notes/doc"),
        )
    )
    assert sorted(out.keys()) == ["Cache-Control", "Content-Type", "ETag", "X-Couch-Request-ID"]
