"""Which part of a user's database a request under ``/db/`` addresses, and whether that part is
on the allow-list.

Decisions are made on the percent-decoded segments (``_design%2Fx`` is a design document), while
the raw path is what gets forwarded, unchanged, so ``%2F`` and ``%2B`` in document ids survive.
Everything not listed here is refused before anything reaches the upstream.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, unquote, urlencode

from gateway.errors import (
    BadRequest,
    CouchError,
    Forbidden,
    IllegalAppName,
    MethodNotAllowed,
    NotFound,
)
from gateway.replication import changes_filter

APP = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")

READ = ("GET", "HEAD")
READ_WRITE = ("GET", "HEAD", "PUT", "DELETE")
DB_METHODS = (*READ_WRITE, "POST")
"""POST to the database creates a document with an id the server makes, as CouchDB allows."""
ENDPOINTS: dict[str, tuple[str, ...]] = {
    "_changes": ("GET", "HEAD", "POST"),
    "_all_docs": ("GET", "HEAD", "POST"),
    "_revs_diff": ("POST",),
    "_bulk_docs": ("POST",),
    "_bulk_get": ("POST",),
    "_ensure_full_commit": ("POST",),
}
CHANGES_FILTERS = {"_doc_ids", "_selector"}
_INTEGER = re.compile(r"-?[0-9]{1,18}")
LOCAL_ATTACHMENTS = "_local documents do not accept attachments."


class Kind(StrEnum):
    SERVER = "server"
    DB = "db"
    ENDPOINT = "endpoint"
    LOCAL = "local"
    DOC = "doc"
    ATTACHMENT = "attachment"


@dataclass(frozen=True, slots=True)
class Target:
    kind: Kind
    app: str = ""
    raw_rest: str = ""
    """The raw path after the database name ('' or starting with '/'), forwarded unchanged."""
    endpoint: str = ""
    doc_id: str = ""
    """Decoded document id (for DOC, ATTACHMENT and LOCAL)."""
    query: str = ""
    """The query string forwarded upstream (see :func:`with_query`)."""
    feed: str = ""
    """For ``_changes``: the feed as the upstream will run it."""
    since: str | None = None

    @property
    def route_class(self) -> str:
        """A label for logs and metrics that carries no document id."""
        return f"endpoint{self.endpoint}" if self.kind is Kind.ENDPOINT else self.kind.value

    @property
    def is_live_feed_candidate(self) -> bool:
        return self.kind is Kind.ENDPOINT and self.endpoint == "_changes"


def _allowed(methods: tuple[str, ...], method: str) -> None:
    if method not in methods:
        raise MethodNotAllowed(methods)


def _bad_path() -> CouchError:
    return BadRequest("invalid path")


def classify(method: str, raw: str) -> Target:
    """Classify ``raw``, the raw path after ``/db``; raises a :class:`CouchError` if refused."""
    if raw in ("", "/"):
        _allowed(READ, method)
        return Target(Kind.SERVER)
    if not raw.startswith("/"):
        raise NotFound("Database does not exist.")
    if _BAD_ESCAPE.search(raw):
        raise BadRequest("invalid_url_encoding")  # CouchDB's answer; express's is a stack trace
    segments = raw[1:].split("/")
    decoded = [unquote(s) for s in segments]
    if any(s in (".", "..") for s in (*segments, *decoded)):
        raise _bad_path()

    app = segments[0]
    if not APP.match(app):
        if decoded[0].startswith("_"):
            raise NotFound("Database does not exist.")
        raise IllegalAppName(decoded[0])
    rest = segments[1:]
    raw_rest = raw[1 + len(app) :]
    if not rest or rest == [""]:
        _allowed(DB_METHODS, method)
        return Target(Kind.DB, app, raw_rest)

    first, dfirst = rest[0], decoded[1]
    if first == "" or any(s == "" for s in rest[1:]):
        raise _bad_path()
    if dfirst.startswith("_"):
        if first in ENDPOINTS and len(rest) == 1:
            _allowed(ENDPOINTS[first], method)
            return Target(Kind.ENDPOINT, app, raw_rest, endpoint=first)
        if first == "_local" and len(rest) == 2:
            _allowed(READ_WRITE, method)
            return Target(Kind.LOCAL, app, raw_rest, doc_id="_local/" + decoded[2])
        if first == "_local" and len(rest) > 2:
            raise BadRequest(LOCAL_ATTACHMENTS)  # CouchDB's answer, for every method
        if dfirst.startswith("_design"):
            raise Forbidden("design documents are not available through couchgate")
        raise Forbidden(f"{dfirst.split('/')[0]} is not available through couchgate")

    _allowed(READ_WRITE, method)
    kind = Kind.DOC if len(rest) == 1 else Kind.ATTACHMENT
    return Target(kind, app, raw_rest, doc_id=dfirst)


def with_query(target: Target, raw_query: str, method: str = "GET") -> Target:
    """The target with the query it will forward; refuses what would reach past the allow-list.

    For ``_changes`` the query is decided on as CouchDB reads it (keys in any case, the last of
    repeated keys winning, ``feed=live`` meaning continuous), so it is rebuilt: keys in lower
    case, each once, ``live`` spelled out. What couchgate checked is then exactly what the
    upstream runs: a feed it knows to be live, a filter it allowed.
    """
    if not target.is_live_feed_candidate:
        return dataclasses.replace(target, query=raw_query)
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        key = name.lower()
        if key in params:
            raise BadRequest(f"the query parameter {key!r} is given more than once")
        params[key] = "continuous" if key == "feed" and value == "live" else value
    if params.get("filter", "_none") not in CHANGES_FILTERS | {"_none"}:
        raise Forbidden("only the _doc_ids and _selector filters are available")
    if "view" in params:
        raise Forbidden("view filters are not available through couchgate")
    # What CouchDB 3.5.2 cannot read here it answers with a 500 (badarg): refused instead.
    for name in ("limit", "timeout"):
        if name in params and not _INTEGER.fullmatch(params[name]):
            raise BadRequest(f"the {name} parameter must be a whole number")
    if params.get("style", "main_only") not in ("main_only", "all_docs"):
        raise BadRequest("the style parameter must be main_only or all_docs")
    if method != "POST":
        # A GET carries its filter's argument in the query, or (a selector) cannot carry it.
        if params.get("filter") == "_selector":
            raise BadRequest(changes_filter.SELECTOR_MISSING)
        if params.get("filter") == "_doc_ids":
            changes_filter.doc_ids_from_query(params.get("doc_ids"))
    return dataclasses.replace(
        target,
        query=urlencode(list(params.items())),
        feed=params.get("feed", "normal"),
        since=params.get("since"),
    )


def with_selector(target: Target, selector: object) -> Target:
    """A POST ``_changes`` target with no ``doc_ids`` or selector of the client's own in its
    query, and ``selector`` (the body's, checked) there for upstreams that read it only there
    (pouchdb-server); None leaves it out."""
    query = parse_qsl(target.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k not in ("selector", "doc_ids")]
    if selector is not None:
        kept.append(("selector", json.dumps(selector, separators=(",", ":"))))
    return dataclasses.replace(target, query=urlencode(kept))


def app_enabled(patterns: Iterable[str], app: str) -> bool:
    return any(fnmatch.fnmatchcase(app, pattern) for pattern in patterns)
