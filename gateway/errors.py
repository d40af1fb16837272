"""The error tree, with CouchDB's error ids, and the one place the JSON error body is built.

PouchDB and CouchDB's replicator read the ``error`` id: ``unauthorized`` and ``forbidden`` stop a
replication for good, everything else is retried. So the id must say what a retry would find.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
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


class IllegalDatabaseName(CouchError):
    status, error = 400, "illegal_database_name"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Name: '{name[:80]}'. App names are lowercase letters, digits, _ and -, "
            "starting with a letter, at most 64 characters."
        )


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


class UpstreamUnavailable(CouchError):
    status, error, default_reason = 503, "service_unavailable", "the database is not reachable"


class TooManyRequests(CouchError):
    """A rate limit: clients retry after ``Retry-After`` seconds (PouchDB retries any error but
    ``unauthorized`` and ``forbidden``, so a replication resumes on its own)."""

    status, error, default_reason = 429, "too_many_requests", "too many requests, slow down"

    def __init__(self, reason: str | None = None, *, retry_after: float) -> None:
        super().__init__(reason, headers={"Retry-After": str(max(1, math.ceil(retry_after)))})


class AtCapacity(CouchError):
    """This process is near the end of its file descriptors or its live-feed budget: a clean,
    retryable refusal instead of an accept() that fails for everyone."""

    status, error, default_reason = 503, "service_unavailable", "the server is at capacity"

    def __init__(self, reason: str | None = None, *, retry_after: float) -> None:
        super().__init__(reason, headers={"Retry-After": str(max(1, math.ceil(retry_after)))})


UNREADABLE_BODY = "the request body could not be read"


class RequestTimeout(CouchError):
    status, error = 408, "request_timeout"
    default_reason = "the request body stopped arriving"
