"""A small Mango selector matcher for ``_changes?filter=_selector`` (the gateway lets it through).

Covers the combination and condition operators replication filters use: implicit and explicit
``$eq``, ``$ne``, ``$gt``/``$gte``/``$lt``/``$lte`` (same-type comparison), ``$exists``, ``$in``,
``$nin``, ``$and``, ``$or``, ``$nor``, ``$not``, and dotted field paths. Anything else is a
``bad_request`` up front rather than a silent mismatch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import BadRequest

_COMPARE = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}
_MISSING = object()
_SUPPORTED = frozenset({"$eq", "$ne", "$exists", "$in", "$nin", *_COMPARE})
# Mango's other operators: CouchDB has them, the store's matcher does not.
_MANGO = frozenset(
    {"$type", "$size", "$mod", "$regex", "$all", "$elemMatch", "$allMatch", "$keyMapMatch"}
    | {"$beginsWith"}
)


# The matcher recurses per level; CouchDB takes any depth, here deeper selectors are a 400.
MAX_DEPTH = 100


def validate(selector: object) -> Mapping[str, Any]:
    if not isinstance(selector, Mapping):
        raise BadRequest("Selector must be a JSON object")
    _check(selector, 0)
    return selector


def _check(selector: Mapping[str, Any], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise BadRequest(f"Selector nested deeper than {MAX_DEPTH} levels")
    for key, value in selector.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
                raise BadRequest(f"{key} takes a list of selectors")
            for sub in value:
                _check(sub, depth + 1)
        elif key == "$not":
            _check(value if isinstance(value, Mapping) else {}, depth + 1)
        elif key.startswith("$") and key not in _SUPPORTED:
            if key not in _MANGO:
                raise BadRequest(f"Invalid operator: {key}")  # CouchDB's words
            raise BadRequest(f"Selector operator {key} is not supported by the embedded store")
        elif isinstance(value, Mapping):
            _check(value, depth + 1)


def matches(selector: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
    return all(_clause(key, value, doc) for key, value in selector.items())


def _clause(key: str, value: Any, doc: Mapping[str, Any]) -> bool:
    if key == "$and":
        return all(matches(sub, doc) for sub in value)
    if key == "$or":
        return any(matches(sub, doc) for sub in value)
    if key == "$nor":
        return not any(matches(sub, doc) for sub in value)
    if key == "$not":
        return not matches(value, doc)
    return _condition(_field(doc, key), value)


def _field(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, Mapping) or part not in doc:
            return _MISSING
        doc = doc[part]
    return doc


def _condition(actual: Any, expected: Any) -> bool:
    if not isinstance(expected, Mapping):
        return actual is not _MISSING and bool(actual == expected)
    if not any(k.startswith("$") for k in expected):  # {"a": {"b": 1}} is the field a.b
        return isinstance(actual, Mapping) and matches(expected, actual)
    return all(_operator(op, actual, arg) for op, arg in expected.items())


def _operator(op: str, actual: Any, arg: Any) -> bool:
    if op == "$exists":
        return (actual is not _MISSING) == bool(arg)
    if actual is _MISSING:
        return op in ("$ne", "$nin")
    if op == "$eq":
        return bool(actual == arg)
    if op == "$ne":
        return bool(actual != arg)
    if op == "$in":
        return isinstance(arg, list) and actual in arg
    if op == "$nin":
        return isinstance(arg, list) and actual not in arg
    if op in _COMPARE:
        same_kind = isinstance(actual, str) == isinstance(arg, str) and not isinstance(
            actual, (dict, list, bool)
        )
        return same_kind and bool(_COMPARE[op](actual, arg))
    return False
