"""What the fuzz found in code outside the HTTP boundary, each waiting for its own fix (issue 9).

An example that shows one of these is counted and printed at the end of the test, not failed,
so the suite guards everything else meanwhile; ``COUCHGATE_FUZZ_STRICT=1`` fails them as well.
Each entry names its finding and the code it is in: delete the entry with the fix.
"""

from __future__ import annotations

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
