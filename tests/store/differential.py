"""Differential testing against Apache CouchDB 3.5.2: request sequences, how they are sent, and
how two answers are made comparable (issue 22).

A *sequence* is a list of requests to one fresh database, over the surface couchgate's allow-list
admits (docs/architecture.md, "The protocol surface"; gateway/replication/paths.py): documents
with their query parameters,
``_all_docs`` (GET and POST, parameters in the query and in the body), ``_changes`` in every feed,
``_bulk_docs`` with and without ``new_edits``, ``_bulk_get``, ``_revs_diff``, attachments and
``_local`` documents. The same sequence goes to CouchDB and to the server under test, one request
at a time, and each pair of answers must be equal after :func:`normalized`.

Revisions are chosen, not made: most writes are ``new_edits=false`` with revision ids of
``x`` and ``y`` (above every hex digest, so a chosen leaf always wins over a server-made one of
its position), so both servers hold the same trees and answer the same revisions, conflicts and
winners. Interactive writes (``PUT``, ``DELETE``, ``new_edits`` true,
attachments), whose revision hash is each server's own, go to their own documents (``p``, ``q``),
which thereby never branch: a winner never hangs on how two servers' hashes compare. A request
that needs such a document's current revision names it as ``$REV:<id>``, which each server's own
answer resolves (a ``GET`` not compared). A ``since`` is likewise a sequence the server itself
handed out: ``$SEQ:<n>`` is the n-th row's of its ``_changes`` (sequences are opaque; the store's
are integers, which CouchDB refuses as ``since``).

What :func:`normalized` makes equal, and why it may legitimately differ:

- **Sequences** (``seq``, ``last_seq``, ``update_seq``, an eventsource ``id``): CouchDB's are
  ``"N-opaque"`` strings, the store's integers; both are only ever handed back. Compared by
  their number N, which on one shard counts the same writes.
- **Server-made revision hashes** (32 hex digits, in a revision or in ``_revisions.ids``):
  CouchDB hashes the Erlang term of the edit, the store its JSON. Each distinct one becomes
  ``#1``, ``#2``, ... in order of first appearance in the sequence, so "the same revision as
  before" still has to hold.
- **A database's ``sizes`` and ``instance_start_time``**: bytes on disk and when the server
  started are each server's own.
- **Headers** other than the status are not compared, nor heartbeat lines (timing).
- **The body of a ``HEAD``**: there is none; the status is compared.

Nothing else is normalized: ``offset``, ``total_rows``, ``pending``, error reasons and the order
of rows are compared exactly (CouchDB on one shard, ``q=1``, orders them all).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlsplit

from hypothesis import strategies as st

from tests.rawhttp import Answer as RawAnswer
from tests.rawhttp import ask

# -- the pools a sequence draws from -------------------------------------------------------------

CHOSEN_IDS = ["a", "b", "c", "B", "d e"]
"""Documents written with chosen revisions (``B`` sorts before ``a`` by bytes: CouchDB's
``_all_docs`` is in raw order, not ICU's)."""
LIVE_IDS = ["p", "q"]
"""Documents written interactively: linear histories of server-made revisions."""
ALL_IDS = [*CHOSEN_IDS, *LIVE_IDS, "zz"]
ATTACHMENT = "f.txt"
SEQ_KEYS = frozenset({"seq", "last_seq", "update_seq", "purge_seq"})
SERVER_KEYS = frozenset({"sizes", "instance_start_time"})
"""Database info that is each server's own: bytes on disk, when it started."""
_HEX32 = re.compile(r"[0-9a-f]{32}")
_REV_TOKEN = re.compile(r"\$REV:([a-z ]+)")
_SEQ_TOKEN = re.compile(r"\$SEQ:([0-9]+)")


@dataclass(frozen=True)
class Request:
    """One request, relative to the database: ``path`` is '' or starts with '/'."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None
    raw_body: bytes | None = None
    content_type: str = "application/json"
    read: str = "json"
    """How the answer is read: ``json``, ``lines`` (continuous), ``sse``, ``bytes``."""
    loose: tuple[str, ...] = ()
    """Members of the answer not compared (a deliberate difference, see the docs)."""

    def target(self) -> str:
        if not self.query:
            return self.path
        return self.path + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in self.query)

    def describe(self) -> str:
        body = "" if self.body is None else " " + json.dumps(self.body)
        return f"{self.method} {self.target()}{body}"


# -- strategies ------------------------------------------------------------------------------------

ids = st.sampled_from(ALL_IDS)
chosen_ids = st.sampled_from(CHOSEN_IDS)
live_ids = st.sampled_from(LIVE_IDS)
flags = st.sampled_from(["true", "false"])


@st.composite
def rev_paths(draw: st.DrawFn) -> list[str]:
    """A chosen revision's path, newest first. Its id names the whole branch (``xyx`` is the
    third revision after ``x`` and ``xy``), as a real revision hash does: one id, one place in
    the tree."""
    letters = draw(st.lists(st.sampled_from("xy"), min_size=1, max_size=4))
    return [f"{pos}-{''.join(letters[:pos])}" for pos in range(len(letters), 0, -1)]


@st.composite
def chosen_revs(draw: st.DrawFn) -> str:
    return draw(rev_paths())[0]


@st.composite
def replicated_doc(draw: st.DrawFn, doc_id: str | None = None) -> dict[str, Any]:
    """A revision as a replicator writes it: chosen id, ancestry, maybe deleted, maybe with an
    inline attachment."""
    path = draw(rev_paths())
    pos = len(path)
    doc: dict[str, Any] = {"_id": doc_id or draw(chosen_ids), "_rev": path[0]}
    if draw(st.booleans()):
        doc["_revisions"] = {"start": pos, "ids": [rev.split("-", 1)[1] for rev in path]}
    if draw(st.integers(0, 4)) == 0:
        doc["_deleted"] = True
    else:
        doc["v"] = draw(st.integers(0, 9))
    if draw(st.integers(0, 4)) == 0:
        data = draw(st.sampled_from(["aGk=", "aGVsbG8=", ""]))
        doc["_attachments"] = {
            ATTACHMENT: {"content_type": "text/plain", "data": data},
        }
    return doc


@st.composite
def bulk_replicated(draw: st.DrawFn) -> Request:
    docs = draw(st.lists(replicated_doc(), min_size=1, max_size=4))
    return Request("POST", "/_bulk_docs", body={"new_edits": False, "docs": docs})


@st.composite
def put_replicated(draw: st.DrawFn) -> Request:
    doc = draw(replicated_doc())
    return Request("PUT", "/" + quote(doc["_id"], safe=""), (("new_edits", "false"),), body=doc)


@st.composite
def live_write(draw: st.DrawFn) -> Request:
    """An interactive edit of a live document (``$REV:`` is that server's current revision)."""
    doc_id = draw(live_ids)
    path = "/" + doc_id
    rev = draw(st.sampled_from([f"$REV:{doc_id}", None, "1-x9"]))
    kind = draw(st.sampled_from(["put", "put_query", "post", "delete", "bulk", "att", "att_del"]))
    body: dict[str, Any] = {"v": draw(st.integers(0, 9))}
    if kind == "put":
        return Request("PUT", path, body={**body, **({"_rev": rev} if rev else {})})
    if kind == "put_query":
        return Request("PUT", path, (("rev", rev),) if rev else (), body=body)
    if kind == "post":
        return Request("POST", "", body={"_id": doc_id, **body, **({"_rev": rev} if rev else {})})
    if kind == "delete":
        return Request("DELETE", path, (("rev", rev),) if rev else ())
    if kind == "bulk":
        doc = {"_id": doc_id, **body, **({"_rev": rev} if rev else {})}
        if draw(st.booleans()):
            doc["_deleted"] = True
        return Request("POST", "/_bulk_docs", body={"docs": [doc]})
    query = (("rev", rev),) if rev else ()
    if kind == "att":
        data = draw(st.sampled_from([b"hello", b"", b"\x00\xff"]))
        return Request(
            "PUT", f"{path}/{ATTACHMENT}", query, raw_body=data, content_type="text/plain"
        )
    return Request("DELETE", f"{path}/{ATTACHMENT}", query)


@st.composite
def doc_read(draw: st.DrawFn) -> Request:
    doc_id = draw(ids)
    params: list[tuple[str, str]] = []
    for name in ("revs", "revs_info", "conflicts", "deleted_conflicts", "meta", "attachments"):
        if draw(st.integers(0, 3)) == 0:
            params.append((name, draw(flags)))
    choice = draw(st.integers(0, 5))
    if choice == 0:
        params.append(("rev", draw(chosen_revs())))
    elif choice == 1:
        params.append(("rev", draw(chosen_revs())))
        params.append(("latest", "true"))
    elif choice == 2:
        revs = draw(st.one_of(st.just("all"), st.lists(chosen_revs(), max_size=3).map(json.dumps)))
        params.append(("open_revs", revs))
        if draw(st.booleans()):
            params.append(("latest", "true"))
    elif choice == 3:
        params.append(("atts_since", json.dumps(draw(st.lists(chosen_revs(), max_size=2)))))
    method = draw(st.sampled_from(["GET", "GET", "GET", "HEAD"]))
    return Request(method, "/" + quote(doc_id, safe=""), tuple(params))


@st.composite
def attachment_read(draw: st.DrawFn) -> Request:
    doc_id = draw(st.sampled_from([*CHOSEN_IDS, *LIVE_IDS]))
    query = (("rev", draw(chosen_revs())),) if draw(st.booleans()) else ()
    method = draw(st.sampled_from(["GET", "HEAD"]))
    return Request(method, f"/{quote(doc_id, safe='')}/{ATTACHMENT}", query, read="bytes")


ALL_DOCS_FLAGS = ["include_docs", "conflicts", "descending", "update_seq", "inclusive_end"]


@st.composite
def all_docs_params(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """``_all_docs`` parameters as JSON values, in the order they will be sent."""
    params: list[tuple[str, Any]] = []
    for name in ALL_DOCS_FLAGS:
        if draw(st.integers(0, 2)) == 0:
            params.append((name, draw(st.booleans())))
    for name in ("limit", "skip"):
        if draw(st.integers(0, 2)) == 0:
            params.append((name, draw(st.integers(0, 4))))
    key = st.sampled_from([*ALL_IDS, "", "a0"])
    shape = draw(st.integers(0, 6))
    if shape == 0:
        params.append(("keys", draw(st.lists(key, max_size=4))))
    elif shape == 1:
        params.append(("key", draw(key)))
    elif shape == 2:
        for name in draw(st.lists(st.sampled_from(["startkey", "endkey", "start_key"]))):
            params.append((name, draw(key)))
    elif shape == 3:
        params.append(("startkey_docid", draw(key)))
    elif shape == 4:
        params.append((draw(st.sampled_from(["key", "keys"])), draw(st.sampled_from([1, None]))))
        params.append(("keys", [draw(key)]))
    return draw(st.permutations(params))


def _query_value(value: Any) -> str:
    """A view parameter in the query string: JSON for keys, the bare word for the rest."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


@st.composite
def all_docs(draw: st.DrawFn) -> Request:
    params = draw(all_docs_params())
    if draw(st.sampled_from(["GET", "POST"])) == "GET":
        query = tuple((name, _query_value(v)) for name, v in params)
        return Request(draw(st.sampled_from(["GET", "GET", "HEAD"])), "/_all_docs", query)
    in_body = draw(st.lists(st.booleans(), min_size=len(params), max_size=len(params)))
    body = {name: v for (name, v), b in zip(params, in_body, strict=True) if b}
    query = tuple(
        (name, _query_value(v)) for (name, v), b in zip(params, in_body, strict=True) if not b
    )
    return Request("POST", "/_all_docs", query, body=body)


@st.composite
def changes(draw: st.DrawFn) -> Request:
    feed = draw(st.sampled_from(["normal", "normal", "longpoll", "continuous", "eventsource"]))
    params: list[tuple[str, str]] = []
    if feed != "normal":
        params.append(("feed", feed))
    since = draw(st.sampled_from([None, "0", "now", "$SEQ:0", "$SEQ:2", "$SEQ:5"]))
    if since is not None:
        params.append(("since", since))
    if draw(st.booleans()):
        params.append(("limit", str(draw(st.integers(0, 4)))))
    if feed in ("continuous", "eventsource", "longpoll"):
        params.append(("timeout", str(draw(st.sampled_from([10, 30])))))
    if draw(st.integers(0, 2)) == 0:
        params.append(("style", draw(st.sampled_from(["all_docs", "main_only"]))))
    for name in ("include_docs", "conflicts", "descending", "attachments"):
        if draw(st.integers(0, 3)) == 0:
            params.append((name, draw(flags)))
    if draw(st.integers(0, 4)) == 0:
        params.append(("seq_interval", str(draw(st.integers(1, 3)))))
    body: Any = None
    method = "GET"
    chosen_filter = draw(st.integers(0, 4))
    if chosen_filter == 0:
        params.append(("filter", "_doc_ids"))
        doc_ids = draw(st.lists(ids, max_size=3, unique=True))
        if draw(st.booleans()):
            method, body = "POST", {"doc_ids": doc_ids}
        else:
            params.append(("doc_ids", json.dumps(doc_ids)))
    elif chosen_filter == 1:
        params.append(("filter", "_selector"))
        method = "POST"
        body = {
            "selector": draw(
                st.sampled_from(
                    [
                        {"v": {"$gt": 4}},
                        {"_id": {"$in": ["a", "p"]}},
                        {"_deleted": True},
                        {"v": {"$exists": False}},
                    ]
                )
            )
        }
    elif draw(st.integers(0, 3)) == 0:
        method, body = "POST", {}
    read = {"continuous": "lines", "eventsource": "sse"}.get(feed, "json")
    return Request(method, "/_changes", tuple(params), body=body, read=read)


@st.composite
def bulk_get(draw: st.DrawFn) -> Request:
    items = []
    for doc_id in draw(st.lists(ids, min_size=1, max_size=3)):
        item: dict[str, Any] = {"id": doc_id}
        if draw(st.booleans()):
            item["rev"] = draw(chosen_revs())
        if draw(st.integers(0, 3)) == 0:
            item["atts_since"] = draw(st.lists(chosen_revs(), max_size=2))
        items.append(item)
    query = tuple(
        (name, draw(flags))
        for name in ("revs", "latest", "attachments")
        if draw(st.integers(0, 2)) == 0
    )
    return Request("POST", "/_bulk_get", query, body={"docs": items})


@st.composite
def revs_diff(draw: st.DrawFn) -> Request:
    body = draw(st.dictionaries(ids, st.lists(chosen_revs(), min_size=1, max_size=3), max_size=3))
    return Request("POST", "/_revs_diff", body=body)


@st.composite
def local_doc(draw: st.DrawFn) -> Request:
    path = "/_local/" + draw(st.sampled_from(["l1", "l2"]))
    method = draw(st.sampled_from(["GET", "PUT", "PUT", "DELETE"]))
    if method == "PUT":
        body: dict[str, Any] = {"v": draw(st.integers(0, 9))}
        if draw(st.booleans()):
            body["_rev"] = draw(st.sampled_from(["0-1", "0-2", "0-5"]))
        return Request("PUT", path, body=body)
    if method == "DELETE":
        return Request("DELETE", path, (("rev", draw(st.sampled_from(["0-1", "0-2"]))),))
    return Request("GET", path, (("revs", "true"),) if draw(st.booleans()) else ())


def db_info() -> st.SearchStrategy[Request]:
    return st.just(Request("GET", ""))


writes = st.one_of(bulk_replicated(), put_replicated(), live_write(), local_doc())
reads = st.one_of(
    doc_read(), all_docs(), changes(), bulk_get(), revs_diff(), attachment_read(), db_info()
)
sequences = st.lists(st.one_of(writes, writes, reads), min_size=2, max_size=14)


# -- sending and normalising -----------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    loose: tuple[str, ...] = ()


Send = Callable[[str, str, bytes | None, dict[str, str]], Awaitable[tuple[int, bytes]]]
"""(method, target relative to the database, body, headers) -> (status, raw body)."""


async def send(request: Request, transport: Send) -> Answer:
    """``request`` through ``transport``, with ``$REV:`` tokens resolved on that same server."""
    request = await _resolved(request, transport)
    data = request.raw_body
    if data is None and request.body is not None:
        data = json.dumps(request.body).encode()
    headers = {"Accept": "application/json", "Content-Type": request.content_type}
    status, raw = await transport(request.method, request.target(), data, headers)
    return Answer(status, _parsed(request, status, raw), request.loose)


def raw_transport(
    base_url: str,
    headers: dict[str, str],
    enough: Callable[[RawAnswer], bool] | None = None,
) -> Send:
    """Requests under ``base_url`` (``http://127.0.0.1:port/path``) on a socket of their own,
    read to the server's close: CouchDB 3.5.2 sends a chunked body after the headers of a HEAD
    on a streamed answer, and an eventsource feed without rows ends twice (a second ``\n``
    chunk after the last one), which an HTTP client library takes for a broken connection.
    ``enough`` ends a read before the close (a feed that would not end by itself)."""
    url = urlsplit(base_url)
    port = url.port or 80

    async def call(
        method: str, target: str, data: bytes | None, extra: dict[str, str]
    ) -> tuple[int, bytes]:
        lines = [f"{method} {url.path}{target} HTTP/1.1", f"Host: {url.netloc}"]
        lines += [f"{k}: {v}" for k, v in {**headers, **extra}.items()]
        lines += ["Connection: close", f"Content-Length: {len(data or b'')}"]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + (data or b"")
        answer = await ask(port, raw, head=method == "HEAD", timeout=30, enough=enough)
        whole = answer.complete or enough is not None
        assert answer.status is not None and whole, f"{method} {target}: no answer"
        return answer.status, answer.body

    return call


async def _resolved(request: Request, transport: Send) -> Request:
    text = json.dumps([request.query, request.body])
    tokens = set(_REV_TOKEN.findall(text))
    for doc_id in tokens:
        status, raw = await transport("GET", "/" + doc_id, None, {"Accept": "application/json"})
        rev = json.loads(raw).get("_rev", "1-x9") if status == 200 else "1-x9"
        text = text.replace(f"$REV:{doc_id}", rev)
    positions = set(_SEQ_TOKEN.findall(text))
    if positions:
        status, raw = await transport("GET", "/_changes", None, {"Accept": "application/json"})
        rows = json.loads(raw)["results"] if status == 200 else []
        for n in positions:
            seq = rows[min(int(n), len(rows) - 1)]["seq"] if rows else 0
            text = text.replace(f"$SEQ:{n}", str(seq))
    if not tokens and not positions:
        return request
    query, body = json.loads(text)
    return replace(request, query=tuple((k, v) for k, v in query), body=body)


def _parsed(request: Request, status: int, raw: bytes) -> Any:
    if request.method == "HEAD":
        return None
    if request.read == "bytes" and status == 200:
        return raw.decode("latin-1")
    if request.read == "lines" and status == 200:
        return [json.loads(line) for line in raw.splitlines() if line.strip()]
    if request.read == "sse" and status == 200:
        events = []
        for block in raw.decode().split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "data" in fields and fields.get("event") != "heartbeat":
                seq = json.loads(fields["id"]) if "id" in fields else None  # JSON, as CouchDB's
                events.append({"data": json.loads(fields["data"]), "id": seq})
        return events
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        return raw.decode("utf-8", "replace")


@dataclass
class Normalizer:
    """One server's side of a sequence: its server-made hashes, numbered as first seen."""

    hashes: dict[str, str] = field(default_factory=dict)
    server_keys: frozenset[str] = SERVER_KEYS
    """Members that are each server's own, compared as "*"."""

    def __call__(self, value: Any, key: str | None = None) -> Any:
        if key in self.server_keys:
            return "*"
        if isinstance(value, dict):
            return {k: self(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v, key) for v in value]
        if key in SEQ_KEYS or (key == "id" and _looks_like_seq(value)):
            return _seq_number(value)
        if isinstance(value, str):
            return _HEX32.sub(self._hash, value)
        return value

    def _hash(self, match: re.Match[str]) -> str:
        return self.hashes.setdefault(match.group(0), f"#{len(self.hashes) + 1}")


def _looks_like_seq(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"\d+(-.*)?", value) is not None


def _seq_number(value: Any) -> Any:
    if isinstance(value, str) and (m := re.match(r"(\d+)(-|$)", value)):
        return int(m.group(1))
    return value


def normalized(answer: Answer, normalizer: Normalizer) -> tuple[int, Any]:
    body = normalizer(answer.body)
    for item in body if isinstance(body, list) else [body]:
        if isinstance(item, dict):
            for key in answer.loose:
                item.pop(key, None)
    return answer.status, body
