"""What a client is told when the upstream refuses or fails a request.

Upstream error answers are read (they are small) and never passed through as they are: an
express error page carries a stack trace with server paths, a CouchDB 500 its Erlang stack, and
reasons can name the internal database (``u<uid>-<app>``) or the upstream's address. A JSON
``{"error", "reason"}`` keeps its error id (clients act on it) with the reason scrubbed; anything
else becomes the CouchDB error for its status.
"""

from __future__ import annotations

import json
import re

from aiohttp import web

from gateway.errors import json_error
from gateway.upstream.backend import db_name

ERROR_BODY_LIMIT = 64 * 1024
SERVER_FAILED = "the database could not answer this request"
_INTERNAL_NAME = re.compile(r"u[a-z2-7]{16}(?:-[a-z0-9_$()+/-]*)?")
_ERROR_ID = re.compile(r"[a-z_]{1,64}")
_TRACE_MARKS = ("\n", "{file,", "node_modules", " at ", "stacktrace", "Error:")

# CouchDB's error ids by status (chttpd:error_info), for answers that carry none.
ERROR_IDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    412: "precondition_failed",
    413: "too_large",
    415: "bad_content_type",
    416: "requested_range_not_satisfiable",
    417: "expectation_failed",
    429: "too_many_requests",
    501: "not_implemented",
    503: "service_unavailable",
}
DEFAULT_REASONS = {
    400: "bad request",
    403: "forbidden",
    404: "missing",
    405: "method not allowed",
    409: "Document update conflict.",
    412: "precondition failed",
    413: "the request entity is too large",
    415: "unsupported content type",
}


def scrub(text: str, uid: str, app: str) -> str:
    """``text`` with the user's internal database named by its app, other internal names out."""
    return _INTERNAL_NAME.sub("[database]", text.replace(db_name(uid, app), app))


def client_error(status: int, body: bytes, uid: str, app: str) -> web.Response:
    """The answer for an upstream error answer ``status`` with ``body`` (as read, maybe cut)."""
    error, reason = _parsed(body)
    if error is None or not _ERROR_ID.fullmatch(error):
        error = ERROR_IDS.get(status, "unknown_error" if status >= 500 else "bad_request")
        reason = None
    if status >= 500 or reason is None or any(mark in reason for mark in _TRACE_MARKS):
        reason = SERVER_FAILED if status >= 500 else DEFAULT_REASONS.get(status, error)
    return json_error(status, error, scrub(reason, uid, app)[:500])


def _parsed(body: bytes) -> tuple[str | None, str | None]:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, None
    if not isinstance(value, dict) or not isinstance(value.get("error"), str):
        return None, None
    reason = value.get("reason")
    return value["error"], reason if isinstance(reason, str) else None
