"""The gateway's refusals: CouchDB's error tree (``couchlite.errors``, where the JSON body is built)
plus the ids only a gateway gives (rate limits, capacity, an upstream that is away).

PouchDB and CouchDB's replicator read the ``error`` id: ``unauthorized`` and ``forbidden`` stop a
replication for good, everything else is retried. So the id must say what a retry would find.
"""

from __future__ import annotations

import math

from couchlite.errors import (
    BadRequest,
    Conflict,
    CouchError,
    FileExists,
    Forbidden,
    LengthRequired,
    MethodNotAllowed,
    NotFound,
    TooLarge,
    Unauthorized,
    UnsupportedMediaType,
    answered,
    error_body,
    http_error,
    json_error,
)

__all__ = [
    "UNREADABLE_BODY",
    "AtCapacity",
    "BadRequest",
    "Conflict",
    "CouchError",
    "FileExists",
    "Forbidden",
    "IllegalAppName",
    "LengthRequired",
    "MethodNotAllowed",
    "NotFound",
    "RequestTimeout",
    "TooLarge",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "UpstreamUnavailable",
    "answered",
    "error_body",
    "http_error",
    "json_error",
]


class IllegalAppName(CouchError):
    status, error = 400, "illegal_database_name"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Name: '{name[:80]}'. App names are lowercase letters, digits, _ and -, "
            "starting with a letter, at most 64 characters."
        )


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
