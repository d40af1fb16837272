"""CouchDB's refusals, with CouchDB's error ids and exact reasons, and the one place the JSON
error body is built.

PouchDB and CouchDB's replicator read the ``error`` id: ``unauthorized`` and ``forbidden`` stop a
replication for good, everything else is retried. So the id must say what a retry would find.
The gateway builds its own refusals on this tree, so every answer has one shape.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import ClassVar

from aiohttp import web


def error_body(error: str, reason: str) -> dict[str, str]:
    return {"error": error, "reason": reason}


def json_error(
    status: int, error: str, reason: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The JSON error response every refusal of couchgate goes out as."""
    return web.Response(
        status=status,
        body=json.dumps(error_body(error, reason)).encode(),
        content_type="application/json",
        headers=headers,
    )


_HTTP_ERROR_IDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "bad_content_type",
}

# CouchDB's own words where aiohttp's would differ.
_HTTP_REASONS = {404: "missing", 413: "the request entity is too large"}


def http_error(exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusal (no route, a method it has no handler for, a body past
    ``client_max_size``) in CouchDB's shape, as the error middlewares of the store and the gateway
    both answer it; ``Allow`` is the one header worth keeping."""
    error = _HTTP_ERROR_IDS.get(exc.status, "unknown_error" if exc.status >= 500 else "bad_request")
    reason = _HTTP_REASONS.get(exc.status, exc.reason)
    allow = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
    return json_error(exc.status, error, reason, headers=allow)


async def answered(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The handler's answer, a refusal (ours, or aiohttp's own) made CouchDB's JSON error body:
    the core of the store's and the gateway's outermost middlewares, which add what else each
    can meet (an upstream that fails, a client that goes away)."""
    try:
        return await handler(request)
    except CouchError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return http_error(exc)


class CouchError(Exception):
    """A refusal that becomes ``{"error", "reason"}`` with ``status`` in the error middleware."""

    status: ClassVar[int] = 500
    error: ClassVar[str] = "unknown_error"
    default_reason: ClassVar[str] = "internal error"

    def __init__(self, reason: str | None = None, *, headers: Mapping[str, str] | None = None):
        self.reason = reason or self.default_reason
        self.headers = dict(headers or {})
        super().__init__(self.reason)

    def response(self) -> web.Response:
        return json_error(self.status, self.error, self.reason, self.headers)

    def item(self, doc_id: str) -> dict[str, str]:
        """This refusal as one entry of a ``_bulk_docs`` answer, as CouchDB reports per document."""
        return {"id": doc_id, "error": self.error, "reason": self.reason}


class BadRequest(CouchError):
    status, error, default_reason = 400, "bad_request", "bad request"


class Unauthorized(CouchError):
    status, error, default_reason = 401, "unauthorized", "authentication required"


class Forbidden(CouchError):
    status, error, default_reason = 403, "forbidden", "not allowed"


class NotFound(CouchError):
    status, error, default_reason = 404, "not_found", "missing"


class MethodNotAllowed(CouchError):
    status, error = 405, "method_not_allowed"

    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__(f"Only {','.join(allowed)} allowed", headers={"Allow": ", ".join(allowed)})


class Conflict(CouchError):
    status, error, default_reason = 409, "conflict", "Document update conflict."


class LengthRequired(CouchError):
    status, error, default_reason = 411, "length_required", "a Content-Length is required"


class FileExists(CouchError):
    status, error = 412, "file_exists"
    default_reason = "The database could not be created, the file already exists."


class TooLarge(CouchError):
    status, error, default_reason = 413, "too_large", "the request entity is too large"


class UnsupportedMediaType(CouchError):
    status, error, default_reason = 415, "bad_content_type", "Content-Type must be application/json"


class IllegalDatabaseName(CouchError):
    status, error = 400, "illegal_database_name"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Name: '{name}'. Only lowercase characters (a-z), digits (0-9), and any of the "
            "characters _, $, (, ), +, -, and / are allowed. Must begin with a letter."
        )


class DocValidation(CouchError):
    status, error, default_reason = 400, "doc_validation", "Document is invalid."


class IllegalDocId(CouchError):
    status, error, default_reason = 400, "illegal_docid", "Invalid document id"


class LocalRevFormat(CouchError):
    """A ``_local`` revision that is not ``0-N``: CouchDB's words, per document in
    ``_bulk_docs``; on a PUT CouchDB answers them with a 500, here with a 400."""

    status, error, default_reason = 400, "error", "Invalid rev format"


class QueryParseError(CouchError):
    status, error, default_reason = 400, "query_parse_error", "Invalid query"


class MissingRev(CouchError):
    """An attachment edit naming a revision the document does not have: CouchDB's 409 with
    ``not_found``."""

    status, error, default_reason = 409, "not_found", "missing_rev"


class MissingStub(CouchError):
    status, error, default_reason = 412, "missing_stub", "Invalid attachment stub."


class PreconditionFailed(CouchError):
    status, error, default_reason = 412, "precondition_failed", "precondition failed"


class NotAcceptable(CouchError):
    status, error, default_reason = 406, "not_acceptable", "not acceptable"


def db_not_found() -> NotFound:
    return NotFound("Database does not exist.")


def bad_json() -> BadRequest:
    return BadRequest("invalid UTF-8 JSON")


def bad_rev() -> BadRequest:
    return BadRequest("Invalid rev format")
