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
    matches: Callable[[str, dict[str, str], bytes, Answer, str], bool]
    """(the request's raw target; its headers, lower-case names; its body; the answer; the
    upstream's kind)"""


AWAITING = [
    Awaiting(
        "pouchdb-server answers 500 to a document whose _attachments holds an entry that is not "
        'an object (PUT doc {"_attachments": {"a.txt": 5}}): CouchDB 3.5.2 ignores such an entry '
        "and answers 201, so the gateway forwards it. pouchdb-server's own bug; every shape "
        "CouchDB cannot read is refused by the gateway (gateway/replication/request_shapes.py)",
        "pouchdb-server",
        lambda _, __, body, answer, kind: (
            kind == "pouchdb-server" and answer.status == 500 and _entry_not_an_object(body)
        ),
    ),
]


def _entry_not_an_object(body: bytes) -> bool:
    """Whether a document of the body (one, or ``_bulk_docs``' list) has an attachment entry
    that is not an object."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return False
    docs = value.get("docs") if isinstance(value, dict) and "docs" in value else [value]
    for doc in docs if isinstance(docs, list) else []:
        attachments = doc.get("_attachments") if isinstance(doc, dict) else None
        if isinstance(attachments, dict) and any(
            not isinstance(entry, dict) for entry in attachments.values()
        ):
            return True
    return False


def awaiting(
    target: str, headers: dict[str, str], body: bytes, answer: Answer, kind: str
) -> Awaiting | None:
    """The known finding this answer shows, if any (never in strict mode)."""
    if STRICT:
        return None
    return next((a for a in AWAITING if a.matches(target, headers, body, answer, kind)), None)


def kills_an_upstream(method: str, target: str, headers: dict[str, str], body: bytes) -> bool:
    """Request shapes that, until their fix is in, take a server down for every later example:
    the strategies leave them out, except in strict mode."""
    if STRICT:
        return False
    # Not an upstream: aiohttp's FileResponse (the demo page) leaves its file to the garbage
    # collector (a ResourceWarning) when the unread body then fails to decode while aiohttp
    # drains it. gateway/demo, or a gateway-wide answer to such bodies.
    return target.startswith("/demo") and "content-encoding" in headers and bool(body)
