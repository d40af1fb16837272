"""``/db/_all_docs`` and ``/db/_local_docs``: CouchDB's view parameters, read as CouchDB reads them.

CouchDB reads the parameters of a POST body as well as the query string, and in one pass: the
body's members first (as JSON values), then the query's (as JSON text or plain strings), each
in the order given, a later one overriding an earlier. A client that puts ``include_docs`` or
``conflicts`` in the body (as several do) gets the documents, as from CouchDB.

``keys`` has one quirk this keeps: a one-element ``keys`` member or parameter reads as that key's
``key`` (the range from it to itself), while the list the query runs on is the one the request
started with (the body's ``keys``, or for GET the first ``keys`` parameter). So ``key="a"`` then
``keys=["b"]`` asks for ``b``, and ``keys=["b"]`` then ``key="a"`` is CouchDB's
``query_parse_error``; a POST with ``?keys=["b"]`` and no ``keys`` in the body is the range
``key="b"`` (with an ``offset``). CouchDB 3.5.2 answers all of these so.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from ..all_docs import RangeQuery, all_docs, local_docs
from ..errors import BadRequest, MethodNotAllowed, QueryParseError, bad_json
from .params import json_object, json_response, strict_loads
from .state import STATE

_UNSET: Any = object()


@dataclass(frozen=True)
class _Args:
    """CouchDB's ``#mrargs`` as far as ``_all_docs`` uses it, while the parameters are read."""

    keys: Any = _UNSET
    start: Any = _UNSET
    end: Any = _UNSET
    start_docid: str | None = None
    end_docid: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    """The other parameters read, in order (a later one overrides an earlier)."""


async def all_docs_endpoint(request: web.Request, db: str) -> web.StreamResponse:
    query = await _read_query(request)
    return json_response(await request.app[STATE].storage.read(all_docs, db, query))


async def local_docs_endpoint(request: web.Request, db: str) -> web.StreamResponse:
    query = await _read_query(request)
    return json_response(await request.app[STATE].storage.read(local_docs, db, query))


async def _read_query(request: web.Request) -> RangeQuery:
    if request.method not in ("GET", "HEAD", "POST"):
        raise MethodNotAllowed(("GET", "HEAD", "POST"))
    body: dict[str, Any] = {}
    if request.method == "POST":
        body = await json_object(request)
        keys = body.get("keys", _UNSET)
        if keys is not _UNSET and not isinstance(keys, list):
            raise BadRequest("`keys` body member must be an array.")
    else:
        raw_keys = request.query.get("keys")
        keys = _UNSET if raw_keys is None else _decode(raw_keys)
        if keys is not _UNSET and not isinstance(keys, list):
            raise BadRequest("`keys` parameter must be an array.")
    args = _Args(keys=keys)
    args = _fold(args, body.items(), decoded=True)
    args = _fold(args, request.query.items(), decoded=False)
    return _validated(args)


def _fold(args: _Args, params: Iterable[tuple[str, Any]], *, decoded: bool) -> _Args:
    for name, value in params:
        args = _param(args, name, value, decoded)
    return args


def _param(args: _Args, name: str, value: Any, decoded: bool) -> _Args:
    """One parameter, as CouchDB's ``parse_param`` takes it (unknown names are ignored)."""
    if name in _JSON_PARAMS:
        key = value if decoded else _decode(value)
        if name == "key" or (name == "keys" and isinstance(key, list) and len(key) == 1):
            one = key[0] if name == "keys" else key
            return replace(args, start=one, end=one)
        if name == "keys":
            return replace(args, keys=key)
        if name in ("startkey", "start_key"):
            return replace(args, start=key)
        return replace(args, end=key)
    if name in ("startkey_docid", "start_key_doc_id"):
        return replace(args, start_docid=_to_binary(value))
    if name in ("endkey_docid", "end_key_doc_id"):
        return replace(args, end_docid=_to_binary(value))
    if name in ("limit", "skip"):
        return replace(args, options=(*args.options, (name, _non_neg_integer(value, decoded))))
    if name in _FLAGS:
        flag = _boolean(value)
        if name == "attachments" and not flag:
            return args  # CouchDB only ever adds the option
        return replace(args, options=(*args.options, (name, flag)))
    return args


_JSON_PARAMS = frozenset({"key", "keys", "startkey", "start_key", "endkey", "end_key"})
_FLAGS = frozenset(
    {"descending", "inclusive_end", "include_docs", "conflicts", "attachments", "update_seq"}
)


def _validated(args: _Args) -> RangeQuery:
    if args.keys is not _UNSET and not isinstance(args.keys, list):
        raise QueryParseError("`keys` must be an array of strings.")
    keys = None if args.keys is _UNSET else args.keys
    ranged = args.start is not _UNSET or args.end is not _UNSET
    if keys and ranged and not _one_key(keys, args.start, args.end):
        raise QueryParseError("`keys` is incompatible with `key`, `start_key` and `end_key`")
    start = args.start_docid if args.start is _UNSET else _id_bound(args.start)
    end = args.end_docid if args.end is _UNSET else _id_bound(args.end)
    options: dict[str, Any] = dict(args.options)
    if keys is not None:
        return RangeQuery(keys=keys, **options)
    return RangeQuery(start=start, end=end, **options)


def _one_key(keys: list[Any], start: Any, end: Any) -> bool:
    """``keys`` of one element with the range from it to itself (Erlang's exact equality: ``1``
    is not ``1.0``, so the JSON texts are compared)."""
    if len(keys) != 1 or start is _UNSET or end is _UNSET:
        return False
    text = json.dumps(keys[0])
    return json.dumps(start) == text and json.dumps(end) == text


def _id_bound(key: Any) -> str:
    """Document ids are strings; CouchDB collates every other key below all of them, and "" is
    below every id too."""
    return key if isinstance(key, str) else ""


def _decode(value: str) -> Any:
    try:
        return strict_loads(value)
    except ValueError:
        raise bad_json() from None  # CouchDB's words for a query parameter too


def _to_binary(value: Any) -> str:
    """``couch_util:to_binary``: a string as it is, anything else as its JSON text."""
    return value if isinstance(value, str) else json.dumps(value)


def _boolean(value: Any) -> bool:
    """``true``/``false``, or the strings in any case; else CouchDB's ``query_parse_error``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    # CouchDB answers 500 (function_clause) for a JSON null; the same refusal as for any other.
    raise QueryParseError(f"Invalid boolean parameter: {_erlang(value)}")


def _non_neg_integer(value: Any, decoded: bool) -> int:
    """A ``limit``/``skip``: a JSON integer, or a query string in Erlang's integer syntax ("+1"
    is 1); a string in the body is refused, as in CouchDB."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif not decoded and _is_erlang_integer(value):
        number = int(value)
    else:
        shown = f"<<{json.dumps(value)}>>" if decoded and isinstance(value, str) else None
        raise QueryParseError(f"Invalid value for integer: {shown or _erlang(value)}")
    if number < 0:
        raise QueryParseError(f"Invalid value for positive integer: {_erlang(value)}")
    return min(number, 2**63 - 1)  # SQLite's largest: a larger limit or skip means the same


def _is_erlang_integer(text: str) -> bool:
    digits = text[1:] if text[:1] in ("+", "-") else text
    return digits.isascii() and digits.isdigit()


def _erlang(value: Any) -> str:
    """A parameter's value as CouchDB's message prints it (Erlang's ``~p``, near enough): a
    string in double quotes, ``{[]}`` for an object."""
    if isinstance(value, (bool, str)) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(_erlang(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{[" + ",".join(f"{{{_erlang(k)},{_erlang(v)}}}" for k, v in value.items()) + "]}"
    return repr(value)


ENDPOINTS: dict[str, Callable[[web.Request, str], Awaitable[web.StreamResponse]]] = {
    "_all_docs": all_docs_endpoint,
    "_local_docs": local_docs_endpoint,
}
