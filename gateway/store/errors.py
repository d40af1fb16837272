"""The store's refusals: gateway.errors' tree plus the few CouchDB ids only a database gives.

The JSON body is still built in one place (``gateway.errors``); this module only names CouchDB's
exact reasons so handlers and the engine say the same thing CouchDB says.
"""

from __future__ import annotations

from gateway.errors import BadRequest, CouchError, NotFound


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
