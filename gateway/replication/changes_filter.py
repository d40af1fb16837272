"""The two ``_changes`` filters couchgate lets through, checked as CouchDB checks them.

An upstream must never see a filter request CouchDB itself would refuse: pouchdb-server takes a
``_selector`` filter without a selector, or a ``_doc_ids`` filter without a list of ids, as the
name of a design document, fails to find it, and the unhandled error ends the whole process.
So the request is refused here with the answer CouchDB 3.5 gives, before anything is forwarded.

CouchDB reads the selector only from a POST body, and ``doc_ids`` from the body of a POST or the
query of a GET. pouchdb-server reads the selector only from the query; so for it, and only for it
(a long query breaks CouchDB), a checked selector is also written into the forwarded query.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from gateway.errors import BadRequest

SELECTOR_MISSING = "Selector must be specified in POST payload"
SELECTOR_NOT_OBJECT = "Selector error: expected a JSON object"
DOC_IDS_BAD = "`doc_ids` filter parameter is not a list of doc ids."
BODY_NOT_OBJECT = "Request body must be a JSON object"
MAX_DEPTH = 64
"""Deeper selectors are refused: no replication filter needs them, and matching one recurses."""

_ANY = ("$eq", "$ne", "$lt", "$lte", "$gt", "$gte")
_LISTS = ("$in", "$nin", "$all")
_SUB_SELECTORS = ("$and", "$or", "$nor")
_OBJECTS = ("$not", "$elemMatch", "$allMatch", "$keyMapMatch")
_STRINGS = ("$type", "$beginsWith")


def check_doc_ids(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise BadRequest(DOC_IDS_BAD)
    return value


def doc_ids_from_query(raw: str | None) -> list[str]:
    try:
        return check_doc_ids(json.loads(raw) if raw is not None else None)
    except ValueError:
        raise BadRequest(DOC_IDS_BAD) from None


def check_body(filter_name: str | None, body: object) -> dict[str, Any]:
    """The POST body of ``_changes``, refused as CouchDB refuses it for ``filter_name``."""
    if not isinstance(body, dict):
        raise BadRequest(BODY_NOT_OBJECT)
    if filter_name == "_doc_ids":
        check_doc_ids(body.get("doc_ids"))
    elif filter_name == "_selector":
        if "selector" not in body:
            raise BadRequest(SELECTOR_MISSING)
        check_selector(body["selector"])
    return body


def check_selector(selector: object) -> Mapping[str, Any]:
    """A Mango selector as CouchDB's ``mango_selector:normalize`` accepts it, or a 400.

    Beyond CouchDB's own checks: ``$mod`` by zero (CouchDB answers a 500 with its stack trace),
    a ``$regex`` that does not compile, and nesting deeper than :data:`MAX_DEPTH`.
    """
    if not isinstance(selector, Mapping):
        raise BadRequest(SELECTOR_NOT_OBJECT)
    _check(selector, 0)
    return selector


def _bad(op: str, arg: object) -> BadRequest:
    return BadRequest(f"Bad argument for operator {op}: {json.dumps(arg)[:200]}")


def _check(selector: Mapping[str, Any], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise BadRequest(f"Selector error: nested deeper than {MAX_DEPTH} levels")
    for key, value in selector.items():
        if key.startswith("$"):
            _operator(key, value, depth + 1)
        elif isinstance(value, Mapping):
            _check(value, depth + 1)


def _operator(op: str, arg: Any, depth: int) -> None:
    if op in _ANY:
        return
    if op in _SUB_SELECTORS:
        if not isinstance(arg, list) or not all(isinstance(s, Mapping) for s in arg):
            raise _bad(op, arg)
        for sub in arg:
            _check(sub, depth)
    elif op in _OBJECTS:
        if not isinstance(arg, Mapping):
            raise _bad(op, arg)
        _check(arg, depth)
    elif op in _LISTS:
        if not isinstance(arg, list):
            raise _bad(op, arg)
    elif op in _STRINGS:
        if not isinstance(arg, str):
            raise _bad(op, arg)
    elif op == "$exists":
        if not isinstance(arg, bool):
            raise _bad(op, arg)
    elif op == "$size":
        if type(arg) is not int:
            raise _bad(op, arg)
    elif op == "$mod":
        if not (
            isinstance(arg, list) and len(arg) == 2 and all(type(n) is int for n in arg) and arg[0]
        ):
            raise _bad(op, arg)
    elif op == "$regex":
        if not isinstance(arg, str) or not _compiles(arg):
            raise _bad(op, arg)
    else:
        raise BadRequest(f"Invalid operator: {op}")


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError):
        return False
    return True
