"""What the fuzz found in code outside the HTTP boundary, each waiting for its own fix (issue 9).

An example that shows one of these is counted and printed at the end of the test, not failed,
so the suite guards everything else meanwhile; ``COUCHGATE_FUZZ_STRICT=1`` fails them as well.
Each entry names its finding and the code it is in: delete the entry with the fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

from tests.rawhttp import Answer

STRICT = os.environ.get("COUCHGATE_FUZZ_STRICT") == "1"


@dataclass(frozen=True)
class Awaiting:
    finding: str
    where: str
    matches: Callable[[str, dict[str, str], Answer, str], bool]
    """(the request's raw target; its headers, lower-case names; the answer; the upstream's
    kind)"""


def _not_json(answer: Answer) -> bool:
    try:
        answer.json()
    except ValueError:
        return True
    return False


def _reason(answer: Answer) -> str:
    try:
        body = answer.json()
    except ValueError:
        return ""
    return str(body.get("reason", "")) if isinstance(body, dict) else ""


AWAITING = [
    Awaiting(
        "issue 9 finding 2: an upstream error page that is not JSON (pouchdb-server's HTML 400 "
        "with a stack trace and file paths, e.g. GET /db/<app>/%80; the embedded store's "
        "text/plain 500) is passed through",
        "gateway/proxy.py",
        lambda _, __, answer, kind: (
            kind != "couchdb"
            and answer.status is not None
            and answer.status >= 400
            and _not_json(answer)
        ),
    ),
    Awaiting(
        "issue 9 finding 8: a body whose Content-Encoding does not decode is streamed upstream "
        "anyway; the upstream call fails and the client gets 503 'the database is not "
        "reachable' (and the log a warning) instead of 400",
        "gateway/proxy.py",
        lambda _, headers, answer, __: (
            "content-encoding" in headers
            and answer.status == 503
            and _reason(answer) in ("the database is not reachable", "")
        ),
    ),
    Awaiting(
        "pouchdb-server answers 500 to documents CouchDB 3.5.2 takes or refuses with 400 (PUT "
        'doc {"_attachments": {"a.txt": 5}}: CouchDB 201; _bulk_docs with attachment data '
        'that is not base64: CouchDB 400 "Invalid attachment data"); the gateway forwards '
        "them and passes the 500 on. Refusing what CouchDB refuses is the rule of finding 1",
        "gateway/policy.py (and pouchdb-server itself)",
        lambda _, __, answer, kind: kind == "pouchdb-server" and answer.status == 500,
    ),
    Awaiting(
        "a replication body of the wrong shape is forwarded (e.g. POST _bulk_get "
        '{"docs": 5}: pouchdb-server 500 "requests.forEach is not a function", CouchDB 500 '
        "function_clause); the gateway should refuse each shape CouchDB refuses or crashes "
        "on with 400 before forwarding (the rule of finding 1)",
        "gateway/proxy.py or paths.py / policy.py",
        lambda target, _, answer, kind: (
            kind != "couchdb"
            and answer.status == 500
            and any(e in target for e in ("_bulk_get", "_all_docs", "_changes"))
        ),
    ),
    Awaiting(
        'a _revs_diff body that is not {id: [revision, ...]} (e.g. {"a": [5]}, '
        '{"a": null}, {"docs": [...]}) is forwarded: CouchDB 3.5.2 itself answers 500 '
        "function_clause, the embedded store 500 (ValueError in max()), pouchdb-server may "
        "too; the gateway should refuse it with 400 before forwarding (the rule of finding 1)",
        "gateway/proxy.py or paths.py / policy.py (and gateway/store for its own 500)",
        lambda target, _, answer, __: "_revs_diff" in target and answer.status == 500,
    ),
]


def awaiting(target: str, headers: dict[str, str], answer: Answer, kind: str) -> Awaiting | None:
    """The known finding this answer shows, if any (never in strict mode)."""
    if STRICT:
        return None
    return next((a for a in AWAITING if a.matches(target, headers, answer, kind)), None)


def _empty_docs(body: bytes) -> bool:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict) and value.get("docs") == []


def kills_an_upstream(method: str, target: str, headers: dict[str, str], body: bytes) -> bool:
    """Request shapes that, until their fix is in, take pouchdb-server down for every later
    example (and every later test of the session): the strategies leave them out, except in
    strict mode. Issue 9 finding 1 (gateway/paths.py, policy.py, multipart.py):

    - ``_changes`` with ``filter=_doc_ids`` or ``filter=_selector`` and no list of ids, or no
      selector object, given (``GET /db/<app>/_changes?filter=_doc_ids``, or ``POST`` with
      ``{}``: pouchdb-server answers 404 and exits; CouchDB answers 400 "`doc_ids` filter
      parameter is not a list of doc ids.");
    - a multipart/related document PUT whose attachment part has no Content-Disposition
      filename, or whose body ends without the closing delimiter (express-pouchdb exits);
    - ``POST _bulk_get`` with ``{"docs": []}``: pouchdb-server never answers (CouchDB: 200
      ``{"results": []}``), and the gateway waits its 300 s upstream read timeout.
    """
    if STRICT:
        return False
    if target.startswith("/demo") and "content-encoding" in headers and body:
        # Not an upstream: aiohttp's FileResponse (the demo page) leaves its file to the
        # garbage collector (a ResourceWarning) when the unread body then fails to decode
        # while aiohttp drains it. gateway/demo, or a gateway-wide answer to such bodies.
        return True
    if "_bulk_get" in target and _empty_docs(body):
        return True
    query = target.partition("?")[2].lower()
    if "_changes" in target and ("_doc_ids" in query or "_selector" in query):
        return True
    ctype = headers.get("content-type", "").lower()
    unframed = b"filename=" not in body or not body.rstrip().endswith(b"--")
    return method == "PUT" and ctype.startswith("multipart/") and unframed
