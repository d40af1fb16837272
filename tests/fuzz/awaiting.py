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


AWAITING = [
    Awaiting(
        "pouchdb-server answers 500 to documents CouchDB 3.5.2 takes or refuses with 400 (PUT "
        'doc {"_attachments": {"a.txt": 5}}: CouchDB 201; _bulk_docs with attachment data '
        'that is not base64: CouchDB 400 "Invalid attachment data"); the gateway forwards '
        "them and passes the 500 on. Refusing what CouchDB refuses is the rule of finding 1",
        "gateway/policy.py (and pouchdb-server itself)",
        lambda _, __, answer, kind: kind == "pouchdb-server" and answer.status == 500,
    ),
]


def awaiting(target: str, headers: dict[str, str], answer: Answer, kind: str) -> Awaiting | None:
    """The known finding this answer shows, if any (never in strict mode)."""
    if STRICT:
        return None
    return next((a for a in AWAITING if a.matches(target, headers, answer, kind)), None)


def kills_an_upstream(method: str, target: str, headers: dict[str, str], body: bytes) -> bool:
    """Request shapes that, until their fix is in, take a server down for every later example:
    the strategies leave them out, except in strict mode."""
    if STRICT:
        return False
    # Not an upstream: aiohttp's FileResponse (the demo page) leaves its file to the garbage
    # collector (a ResourceWarning) when the unread body then fails to decode while aiohttp
    # drains it. gateway/demo, or a gateway-wide answer to such bodies.
    return target.startswith("/demo") and "content-encoding" in headers and bool(body)
