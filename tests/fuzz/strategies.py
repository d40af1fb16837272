"""Hypothesis strategies for what a client can put on the wire: methods, raw paths in every
encoding, query strings, headers and bodies (JSON of odd shapes, deep nesting, bad UTF-8,
multipart), assembled into raw HTTP/1.1 requests.

Every request carries :data:`MARKER` somewhere (path, query, header or body), so a log line
that holds it shows that something the client sent was logged. What a request may authenticate
as is the caller's choice (:class:`Credentials`): the suite never sends the victim's own token.
"""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import urllib.parse
from dataclasses import dataclass

from hypothesis import strategies as st

MARKER = "fz" + secrets.token_hex(6)
APP = "fuzz"

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "COPY", "OPTIONS", "PATCH", "PROPFIND"]
METHOD_WEIGHTS = st.sampled_from(METHODS[:5] * 4 + METHODS[5:])

BASES = [
    "/",
    "/db",
    "/db/",
    f"/db/{APP}",
    f"/db/{APP}/",
    f"/db/{APP}/_changes",
    f"/db/{APP}/_bulk_docs",
    f"/db/{APP}/_bulk_get",
    f"/db/{APP}/_revs_diff",
    f"/db/{APP}/_all_docs",
    f"/db/{APP}/_ensure_full_commit",
    f"/db/{APP}/_local/",
    f"/db/{APP}/_design/",
    f"/db/{APP}/_security",
    f"/db/{APP}/_find",
    f"/db/{APP}/_compact",
    f"/db/{APP}/doc",
    f"/db/{APP}/doc/att",
    "/db/other",
    "/db/_users",
    "/db/_replicator",
    "/db/_all_dbs",
    "/db/couchgate",
    "/auth/code",
    "/auth/token",
    "/auth/enroll",
    "/auth/link",
    "/auth/link/redeem",
    "/auth/me",
    "/auth/devices",
    "/auth/devices/",
    "/account",
    "/account/api",
    "/account/api/devices/",
    "/admin/",
    "/admin/login",
    "/demo/",
    "/metrics",
    "/readyz",
    "/_utils",
    "/_session",
    "/_all_dbs",
]

APP_BASES = [b for b in BASES if b.startswith(f"/db/{APP}")]

# Path segments in the encodings that make gateways and upstreams disagree.
TRICKY_SEGMENTS = [
    "..",
    ".",
    "",
    "%2e%2e",
    "%2E%2E%2F",
    "..%2f..%2f",
    "%2f",
    "%252f",
    "%5c",
    "\\",
    "%00",
    "%0d%0a",
    "%c0%af",
    "%e2%80%ae",
    "%ff",
    "%",
    "%zz",
    ";jsessionid=1",
    "_local",
    "_design",
    "_users",
    "_admin",
    "u" + "a" * 16 + "-fuzz",
    "couchgate",
    "\u65e5\u672c",
    "%F0%9F%98%80",
    "a" * 300,
    MARKER,
]

QUERY_KEYS = [
    "feed",
    "since",
    "filter",
    "selector",
    "style",
    "include_docs",
    "attachments",
    "att_encoding_info",
    "revs",
    "revs_info",
    "open_revs",
    "limit",
    "descending",
    "keys",
    "key",
    "startkey",
    "endkey",
    "heartbeat",
    "timeout",
    "doc_ids",
    "rev",
    "new_edits",
    "conflicts",
    "atts_since",
    "latest",
    "seq_interval",
    "batch",
    "view",
    "token",
    "code",
    "Feed",
    "FILTER",
]
QUERY_VALUES = [
    "",
    "0",
    "-1",
    "1e999",
    "99999999999999999999999",
    "true",
    "false",
    "null",
    "now",
    "longpoll",
    "continuous",
    "eventsource",
    "normal",
    "live",
    "_selector",
    "_doc_ids",
    "_view",
    "_design/x",
    "all_docs",
    "main_only",
    '["a","b"]',
    '{"a":1}',
    '{"selector":5}',
    "%7B%7D",
    "%00",
    "%ff%fe",
    "[",
    '"unterminated',
    "1-abc",
    "all",
    "100",
    MARKER,
]


@st.composite
def raw_paths(draw: st.DrawFn) -> str:
    """A raw path as it goes on the request line (already encoded, or deliberately not)."""
    base = draw(st.sampled_from(BASES) | st.sampled_from(APP_BASES))
    safe = draw(st.sampled_from(["", "/", "%", "/%;,=@"]))
    extra = draw(
        st.lists(
            st.one_of(
                st.sampled_from(TRICKY_SEGMENTS),
                st.text(
                    alphabet=st.characters(codec="utf-8", exclude_characters=" \r\n?#"),
                    max_size=12,
                ).map(lambda s: urllib.parse.quote(s, safe=safe)),
                st.binary(max_size=6).map(lambda b: "".join(f"%{x:02x}" for x in b)),
            ),
            max_size=3,
        )
        if draw(st.booleans())
        else st.just([])
    )
    path = base.rstrip("/") + "".join("/" + seg for seg in extra) if extra else base
    if draw(st.booleans()) and "/" in path[1:]:
        path = path.replace("/", draw(st.sampled_from(["//", "/./", "/%2F"])), 1)
    return path or "/"


@st.composite
def queries(draw: st.DrawFn) -> str:
    pairs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(QUERY_KEYS) | st.text(min_size=1, max_size=6).map(_q),
                st.sampled_from(QUERY_VALUES) | st.text(max_size=10).map(_q),
            ),
            max_size=4,
        )
    )
    # Long polls would hold every example for a minute: the suite asks them to be short.
    if any(k.lower() == "feed" for k, _ in pairs):
        pairs.append(("timeout", "200"))
    return "&".join(f"{k}={v}" if v or draw(st.booleans()) else k for k, v in pairs)


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def json_values(max_leaves: int = 20) -> st.SearchStrategy[object]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20)
        | st.sampled_from(["_id", "_rev", "1-abc", "_local/x", "_design/x", MARKER, "ep1", ""])
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "_id",
                        "_rev",
                        "_deleted",
                        "_attachments",
                        "_revisions",
                        "_conflicts",
                        "_local_seq",
                        "docs",
                        "new_edits",
                        "selector",
                        "doc_ids",
                        "email",
                        "code",
                        "device",
                        "challenge",
                        "data",
                        "content_type",
                        "stub",
                        "length",
                        "digest",
                        "revpos",
                        "start",
                        "ids",
                        "$and",
                        "$or",
                        "$regex",
                        "e",
                        "v",
                        "kid",
                    ]
                )
                | st.text(max_size=8),
                inner,
                max_size=5,
            )
        ),
        max_leaves=max_leaves,
    )


def _deep(depth: int, opener: str) -> bytes:
    if opener == "[":
        return ("[" * depth + "]" * depth).encode()
    return ('{"a":' * depth + "1" + "}" * depth).encode()


@st.composite
def json_documents(draw: st.DrawFn) -> object:
    """A document as an app might write it, or nearly."""
    doc = draw(st.dictionaries(st.text(max_size=8), json_values(8), max_size=4))
    if draw(st.booleans()):
        doc["_id"] = draw(st.sampled_from(["doc", "_local/x", "_design/d", "", MARKER, "a/b"]))
    if draw(st.booleans()):
        doc["_rev"] = draw(st.sampled_from(["1-abc", "0-", "x", "1-" + "f" * 32, MARKER]))
    if draw(st.booleans()):
        doc["_attachments"] = {
            draw(st.sampled_from(["a.txt", "_x", ""])): draw(
                st.sampled_from(
                    [
                        {"content_type": "text/plain", "data": base64.b64encode(b"hi").decode()},
                        {"stub": True},
                        {"data": "!!notbase64"},
                        {"follows": True, "length": 2},
                        {"content_type": "text/plain", "data": 5},
                        {"content_type": 5, "data": "aGk="},
                        {"stub": True, "digest": "md5-bogus"},
                        {"stub": True, "digest": "md5-AAAAAAAAAAAAAAAAAAAAAA=="},
                        {},
                        5,
                    ]
                )
            )
        }
    doc["m"] = MARKER
    return doc


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """(body bytes, Content-Type or None)."""
    kind = draw(
        st.sampled_from(
            ["none", "json", "doc", "bulk", "deep", "badjson", "badutf8", "multipart", "form"]
        )
    )
    json_type = draw(
        st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", None])
    )
    if kind == "none":
        return b"", None
    if kind == "json":
        return json.dumps(draw(json_values())).encode(), json_type
    if kind == "doc":
        return json.dumps(draw(json_documents())).encode(), json_type
    if kind == "bulk":
        docs = draw(st.lists(json_documents(), max_size=4))
        body: dict[str, object] = {"docs": docs}
        if draw(st.booleans()):
            body["new_edits"] = draw(st.sampled_from([False, True, "no", "false", 0, None]))
        return json.dumps(body).encode(), json_type
    if kind == "deep":
        depth = draw(st.sampled_from([100, 513, 1025, 8000, 100_000]))
        deep = _deep(depth, draw(st.sampled_from(["[", "{"])))
        wrap = draw(st.sampled_from(["bare", "doc", "bulk"]))
        if wrap == "doc":
            deep = b'{"m":"' + MARKER.encode() + b'","v":' + deep + b"}"
        elif wrap == "bulk":
            deep = b'{"docs":[{"v":' + deep + b"}]}"
        return deep, "application/json"
    if kind == "badjson":
        raw = draw(
            st.sampled_from(
                [
                    b'{"m":NaN}',
                    b'{"m":Infinity}',
                    b'{"m":1e999999}',
                    b'{"m":"\\ud800"}',
                    b'{"m":"\\udc00\\ud800"}',
                    b'{"docs":[{"_id":"x","v":-1e999999}]}',
                    b'{"a":1,"a":2}',
                    b"\xef\xbb\xbf{}",
                    b"{}\x00",
                    b"{" * 3,
                    b"",
                    b"null",
                    b"[]",
                    b'"str"',
                    b'{"docs":5}',
                    b'{"docs":[5,null,"x"]}',
                    b'{"selector":5}',
                    b'{"selector":{"$and":[' + b'{"$and":[' * 2000 + b"{}" + b"]}" * 2000 + b"]}}",
                ]
            )
        )
        return raw.replace(b'"m"', b'"' + MARKER.encode() + b'"'), "application/json"
    if kind == "badutf8":
        junk = draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80", b"\xf8\x88"]))
        return b'{"m":"' + MARKER.encode() + junk + b'"}', "application/json"
    if kind == "form":
        return f"email={MARKER}%40example.org&code=1".encode(), "application/x-www-form-urlencoded"
    return draw(multiparts())


@st.composite
def multiparts(draw: st.DrawFn) -> tuple[bytes, str | None]:
    boundary = draw(st.sampled_from(["b0undary", "x" * 70, "a b", ""]))
    doc = json.dumps(draw(json_documents())).encode()
    part_headers = draw(
        st.sampled_from(
            [
                b"Content-Type: application/octet-stream\r\n"
                b'Content-Disposition: attachment; filename="a.txt"',
                b"Content-Type: application/octet-stream",
                b"",
                b"Content-Disposition: attachment",
                b"Content-Length: 999",
            ]
        )
    )
    parts = [b"Content-Type: application/json\r\n\r\n" + doc]
    if draw(st.booleans()):
        parts.append(part_headers + b"\r\n\r\nhi" + MARKER.encode())
    sep = b"--" + boundary.encode()
    body = b"".join(sep + b"\r\n" + p + b"\r\n" for p in parts)
    if draw(st.booleans()):
        body += sep + b"--\r\n"  # else: never closed
    ctype = draw(
        st.sampled_from(
            [
                f"multipart/related; boundary={boundary}",
                f'multipart/related; boundary="{boundary}"',
                "multipart/related",
                f"multipart/mixed; boundary={boundary}",
                f"Multipart/Related; boundary={boundary}",
            ]
        )
    )
    return body, ctype


@dataclass(frozen=True)
class Credentials:
    """What the fuzzing client may present: its own token, and tokens that are wrong in the
    ways that would matter (the victim's ids with the wrong secret, the victim's token cut
    short). Never the victim's own token."""

    own_token: str
    victim_uid: str
    victim_device: str
    victim_member: str
    victim_token_prefix: str

    def authorizations(self) -> st.SearchStrategy[list[tuple[str, str]]]:
        return st.sampled_from(self._own() + self._forged())

    def forged_authorizations(self) -> st.SearchStrategy[list[tuple[str, str]]]:
        """Only those that must not authenticate as anyone (for what would end the client's
        own account if they did)."""
        return st.sampled_from(self._forged())

    def _own(self) -> list[list[tuple[str, str]]]:
        basic_own = base64.b64encode(f"anyone:{self.own_token}".encode()).decode()
        return [
            [("Authorization", f"Bearer {self.own_token}")],
            [("Authorization", f"Bearer {self.own_token}")],
            [("Authorization", f"Basic {basic_own}")],
            [("Authorization", f"bearer   {self.own_token}  ")],
            [("Authorization", f"Bearer {self.own_token}"), ("Authorization", "Basic x")],
            [
                ("Authorization", f"Bearer {self.own_token}"),
                ("X-Auth-CouchDB-UserName", self.victim_member),
                ("X-Auth-CouchDB-Roles", "_admin"),
                ("X-Auth-CouchDB-Token", "0" * 40),
            ],
        ]

    def _forged(self) -> list[list[tuple[str, str]]]:
        own_secret = self.own_token.rsplit(".", 1)[1]
        forged = f"cg1.{self.victim_uid}.{self.victim_device}.{own_secret}"
        basic_forged = base64.b64encode(f"{self.victim_uid}:{forged}".encode()).decode()
        return [
            [],
            [("Authorization", f"Bearer {forged}")],
            [("Authorization", f"Basic {basic_forged}")],
            [("Authorization", f"Bearer {self.victim_token_prefix}")],
            [("Authorization", "Bearer cg1....")],
            [("Authorization", "Basic !!!")],
            [("Cookie", f"AuthSession={MARKER}")],
        ]


EXTRA_HEADERS = [
    ("Accept", "application/json"),
    ("Accept", "multipart/related"),
    ("Accept", "*/*"),
    ("Accept", "text/html"),
    ("Origin", "https://evil.example"),
    ("X-Forwarded-For", "10.0.0.1, 127.0.0.1"),
    # A client's own request id is logged by design (to correlate): not the marker, then.
    ("X-Request-ID", "client-chosen-id"),
    ("X-Request-ID", "../../" + MARKER),
    ("Destination", f"../other/{MARKER}"),
    ("Destination", f"_local/{MARKER}"),
    ("Content-Encoding", "gzip"),
    ("Content-Encoding", "deflate"),
    ("Expect", "100-continue"),
    ("Range", "bytes=0-1"),
    ("If-None-Match", '"1-abc"'),
    ("X-Couch-Full-Commit", "true"),
    ("Access-Control-Request-Method", "PUT"),
    ("X-HTTP-Method-Override", "DELETE"),
    ("User-Agent", MARKER),
    ("Referer", f"https://x.example/?token={MARKER}"),
    ("Host", "evil.example"),
]


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    chunked: bool

    def raw(self) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1"]
        names = {name.lower() for name, _ in self.headers}
        if "host" not in names:
            lines.append("Host: 127.0.0.1")
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines.append("Connection: close")
        if self.chunked:
            lines.append("Transfer-Encoding: chunked")
            payload = (
                f"{len(self.body):x}\r\n".encode() + self.body + b"\r\n0\r\n\r\n"
                if self.body
                else b"0\r\n\r\n"
            )
        else:
            if self.body or self.method in ("POST", "PUT"):
                lines.append(f"Content-Length: {len(self.body)}")
            payload = self.body
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass") + payload

    def describe(self) -> str:
        head = f"{self.method} {self.target} {self.headers!r}"
        return f"{head} body={self.body[:300]!r}{'...' if len(self.body) > 300 else ''}"


def _harmless_upstream(request: Request) -> bool:
    from tests.fuzz.awaiting import kills_an_upstream

    headers = {name.lower(): value for name, value in request.headers}
    return not kills_an_upstream(request.method, request.target, headers, request.body)


def requests(credentials: Credentials) -> st.SearchStrategy[Request]:
    """A well-formed HTTP/1.1 request (aiohttp parses it; what it means is the fuzz)."""
    return _requests(credentials).filter(_harmless_upstream)


@st.composite
def _requests(draw: st.DrawFn, credentials: Credentials) -> Request:
    method = draw(METHOD_WEIGHTS)
    target = draw(raw_paths())
    query = draw(st.one_of(st.just(""), queries()))
    if query:
        target += "?" + query
    headers = list(draw(credentials.authorizations()))
    headers += draw(st.lists(st.sampled_from(EXTRA_HEADERS), max_size=3, unique=True))
    body, content_type = draw(bodies())
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    if not body and not query and MARKER not in target:
        headers.append(("X-Marker", MARKER))
    return Request(method, target, headers, body, chunked=draw(st.booleans()) and bool(body))


@st.composite
def malformed_requests(draw: st.DrawFn, credentials: Credentials) -> bytes:
    """Bytes that are not valid HTTP/1.1, carrying the client's token and the marker: what a
    broken or hostile client sends and aiohttp refuses before couchgate sees it."""
    token = credentials.own_token
    path = draw(raw_paths())
    junk = draw(st.sampled_from(["\x00", "\x01", "\x7f", " ", "\t", "\x1b[31m", "\u00ff"]))
    shapes = [
        f"GET {path}?token={token}{junk} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}{junk}\r\n\r\n",
        f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization{junk}Bearer: {token}\r\n\r\n",
        f"GET {path} HTTP/1.1\r\nHost: x\r\nX-{MARKER}{junk}: {token}\r\n\r\n",
        f"GET {path}?{MARKER}={'A' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}{'A' * 9000}\r\n\r\n",
        f"GET {path} HTTP/1.1 {MARKER}\r\nHost: x\r\n\r\n",
        f"G{junk}T {path}?{MARKER} HTTP/1.1\r\n\r\n",
        f"GET {path} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\nX-M: {MARKER}\r\n\r\n",
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n"
        f"Authorization: Bearer {token}\r\n\r\n{MARKER}",
        f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        f"Authorization: Bearer {token}\r\n\r\nzz\r\n{MARKER}\r\n",
        f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        f"Content-Length: 3\r\n\r\n0\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + MARKER,
    ]
    return draw(st.sampled_from(shapes)).encode("utf-8", "surrogatepass")


BODY_ENDPOINTS = [
    ("POST", f"/db/{APP}/_bulk_docs"),
    ("POST", f"/db/{APP}/_revs_diff"),
    ("POST", f"/db/{APP}/_bulk_get"),
    ("POST", f"/db/{APP}/_all_docs"),
    ("POST", f"/db/{APP}/_changes"),
    ("POST", f"/db/{APP}/_changes?filter=_doc_ids"),
    ("POST", f"/db/{APP}/_ensure_full_commit"),
    ("PUT", f"/db/{APP}/doc"),
    ("PUT", f"/db/{APP}/_local/cp"),
    ("PUT", f"/db/{APP}/doc/att.txt"),
    ("POST", "/auth/code"),
    ("POST", "/auth/token"),
    ("POST", "/auth/enroll"),
    ("POST", "/auth/link/redeem"),
    ("POST", "/account/api/import"),
    ("POST", "/shares/api"),
    ("PUT", "/shares/api/some-share-id-000000"),
    ("DELETE", "/account/api/devices/not-a-device"),
]


def body_requests(credentials: Credentials) -> st.SearchStrategy[Request]:
    """Every endpoint that reads a body, with the attacker's own token, and an odd body."""
    return _body_requests(credentials).filter(_harmless_upstream)


@st.composite
def _body_requests(draw: st.DrawFn, credentials: Credentials) -> Request:
    method, target = draw(st.sampled_from(BODY_ENDPOINTS))
    headers = [("Authorization", f"Bearer {credentials.own_token}")]
    if target == "/account/api/import" and draw(st.booleans()):
        body, gzipped = draw(archives())
        headers.append(("Content-Type", "application/x-ndjson"))
        if gzipped:
            headers.append(("Content-Encoding", "gzip"))
        return Request(method, target, headers, body, chunked=draw(st.booleans()))
    body, content_type = draw(bodies())
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    return Request(method, target, headers, body, chunked=draw(st.booleans()) and bool(body))


@st.composite
def archives(draw: st.DrawFn) -> tuple[bytes, bool]:
    """An import archive (docs/export.md), whole or nearly: a manifest or not, document lines
    for the attacker's app or others (odd documents, odd records, deep or broken lines, blank
    runs), an end line or none, perhaps cut mid-line; and whether it is sent gzipped (then
    perhaps as several members, or broken)."""
    manifest = {"type": "manifest", "format": "couchgate-export", "version": 1, "apps": []}
    lines: list[bytes] = []
    if draw(st.booleans()):
        lines.append(json.dumps(manifest).encode())
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["doc", "doc", "record", "deep", "bad", "blank"]))
        if kind == "doc":
            doc = draw(json_documents())
            if draw(st.booleans()) and isinstance(doc, dict):
                doc.setdefault("_id", "imported")
                doc.setdefault("_rev", "1-" + "c" * 32)
            app = draw(st.sampled_from([APP, "fresh", "_bad", "private", ""]))
            lines.append(json.dumps({"type": "doc", "app": app, "doc": doc}).encode())
        elif kind == "record":
            lines.append(json.dumps(draw(json_values())).encode())
        elif kind == "deep":
            lines.append(
                b'{"type":"doc","app":"' + APP.encode() + b'","doc":' + _deep(5000, "[") + b"}"
            )
        elif kind == "bad":
            lines.append(draw(st.sampled_from([b"{", b"\xff\xfe", b'{"type":"end"', b"NaN"])))
        else:
            lines.append(b"\n" * draw(st.integers(1, 5000)))
    if draw(st.booleans()):
        lines.append(b'{"type":"end","docs":{}}')
    body = b"\n".join(lines) + b"\n"
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    if not draw(st.booleans()):
        return body, False
    packed = gzip.compress(body)
    shape = draw(st.sampled_from(["whole", "members", "cut", "trailing"]))
    if shape == "members":
        half = len(body) // 2
        packed = gzip.compress(body[:half]) + gzip.compress(body[half:])
    elif shape == "cut":
        packed = packed[: max(1, len(packed) - 9)]
    elif shape == "trailing":
        packed += b"garbage"
    return packed, True


@dataclass(frozen=True)
class Targets:
    """What the surface strategies aim at besides the fuzzing client's own token: the ids of
    its own things and of the victim's (which it must not be able to change), and a sealed
    copy of the right shape to share."""

    own_device: str
    own_share: str
    victim_share: str
    envelope: str


def _with_marker(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [*headers, ("X-Marker", MARKER)]


def _ids(targets: Targets, *own: str) -> st.SearchStrategy[str]:
    """An id in a path: ours, the victim's, or odd."""
    return st.sampled_from([*own, targets.victim_share, MARKER, "..", "%2F", "%00", "A" * 300]) | (
        st.text(alphabet=st.characters(codec="utf-8"), max_size=24).map(_q)
    )


def _json_body(
    draw: st.DrawFn, right: dict[str, object], fields: dict[str, st.SearchStrategy[object]]
) -> bytes:
    """``right`` (a request the API accepts) as it is, or with fields dropped, changed to
    anything ``fields`` makes, or one added; now and then an odd body instead."""
    shape = draw(st.integers(0, 5))
    if shape == 0:
        return draw(bodies())[0]
    value = dict(right)
    if shape > 2:
        for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=2, unique=True)):
            if draw(st.booleans()):
                value.pop(name, None)
            else:
                value[name] = draw(fields[name])
        if draw(st.booleans()):
            value[MARKER] = draw(json_values(3))
    return json.dumps(value, allow_nan=True).encode()


@st.composite
def share_requests(draw: st.DrawFn, credentials: Credentials, targets: Targets) -> Request:
    """The share-link API as its owner and anyone holding a link use it (docs/share-links.md):
    create, re-seal, list, revoke, fetch (GET or HEAD) and the page, with well-formed and odd
    fields, aimed at the client's own link, the victim's (known here, as if leaked) or none."""
    own = [("Authorization", f"Bearer {credentials.own_token}")]
    auth = own if draw(st.integers(0, 4)) else draw(credentials.authorizations())
    envelope = st.sampled_from(
        [targets.envelope, targets.envelope[:-7], targets.envelope + "==", "ep1." + MARKER, ""]
    ) | json_values(3)
    fields: dict[str, st.SearchStrategy[object]] = {
        "e2e": envelope,
        "app": st.sampled_from([APP, APP, "private", "other", "_users", "", "A" * 300])
        | json_values(2),
        "expires_in": st.integers(-10, 10**10)
        | st.floats(allow_nan=True)
        | st.sampled_from([59, 60, 90 * 24 * 3600, 90 * 24 * 3600 + 1, True, "3600", None]),
        "burn_after_reading": st.booleans() | json_values(2),
    }
    op = draw(st.sampled_from(["create"] * 3 + ["reseal", "list", "revoke", "data", "head"]))
    share_id = draw(_ids(targets, targets.own_share))
    if op == "create":
        body = _json_body(draw, {"e2e": targets.envelope, "app": APP}, fields)
        return Request("POST", "/shares/api", _with_marker(auth), body, False)
    if op == "reseal":
        body = _json_body(draw, {"e2e": targets.envelope}, {"e2e": envelope})
        return Request("PUT", f"/shares/api/{share_id}", _with_marker(auth), body, False)
    if op == "list":
        return Request("GET", "/shares/api", _with_marker(auth), b"", False)
    if op == "revoke":
        return Request("DELETE", f"/shares/api/{share_id}", _with_marker(auth), b"", False)
    tail = draw(st.sampled_from(["/data", "/data", ""]))
    method = "HEAD" if op == "head" else "GET"
    return Request(method, f"/s/{share_id}{tail}", _with_marker([]), b"", False)


@st.composite
def account_requests(draw: st.DrawFn, credentials: Credentials, targets: Targets) -> Request:
    """The account API (gateway/accounts/api.py, /auth/devices): what one holds, its export,
    deleting an app or a device by any name (never the client's own device: no id drawn is
    it), and deleting the account with credentials that are no one's (forged from the
    victim's ids, cut short, none: the client's own account stays)."""
    own = [("Authorization", f"Bearer {credentials.own_token}")]
    auth = own if draw(st.integers(0, 3)) else draw(credentials.authorizations())
    app = draw(
        st.sampled_from([APP, "private", "other", "_users", "..", "%2F", MARKER, "A" * 300])
        | st.text(alphabet=st.characters(codec="utf-8"), max_size=12).map(_q)
    )
    device = draw(_ids(targets, credentials.victim_device, "not-a-device"))
    op = draw(
        st.sampled_from(
            [
                ("GET", "/account/api"),
                ("GET", "/account/api/devices"),
                ("GET", "/account/api/apps"),
                ("GET", "/account/api/export"),
                ("GET", "/auth/me"),
                ("GET", "/auth/devices"),
                ("DELETE", f"/account/api/apps/{app}"),
                ("DELETE", f"/account/api/devices/{device}"),
                ("DELETE", f"/auth/devices/{device}"),
                ("DELETE", "/account/api"),
            ]
        )
    )
    if op == ("DELETE", "/account/api"):
        auth = draw(credentials.forged_authorizations())
    return Request(op[0], op[1], _with_marker(auth), b"", False)


@st.composite
def import_requests(draw: st.DrawFn, credentials: Credentials) -> Request:
    """``POST /account/api/import`` with an archive (:func:`archives`) every time, as the
    client's own account or not, with the content type and encoding it names or others."""
    own = [("Authorization", f"Bearer {credentials.own_token}")]
    auth = own if draw(st.integers(0, 5)) else draw(credentials.authorizations())
    body, gzipped = draw(archives())
    headers = [*auth]
    content_type = draw(
        st.sampled_from(["application/x-ndjson"] * 3 + ["application/json", "text/plain", None])
    )
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    if gzipped:
        headers.append(("Content-Encoding", draw(st.sampled_from(["gzip"] * 4 + ["br", "x"]))))
    return Request(
        "POST", "/account/api/import", _with_marker(headers), body, chunked=draw(st.booleans())
    )
