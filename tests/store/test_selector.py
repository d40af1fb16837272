"""The Mango subset used by ``_changes?filter=_selector``."""

from __future__ import annotations

import pytest

from couchlite.errors import BadRequest
from couchlite.selector import matches, validate

DOC = {"_id": "x", "kind": "note", "n": 4, "tags": ["a"], "meta": {"owner": "u1"}}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"kind": "note"}, True),
        ({"kind": "task"}, False),
        ({"n": {"$gte": 4, "$lt": 5}}, True),
        ({"n": {"$gt": "3"}}, False),  # no cross-type comparison
        ({"meta.owner": "u1"}, True),
        ({"meta": {"owner": "u1"}}, True),
        ({"missing": {"$exists": False}}, True),
        ({"missing": {"$ne": 1}}, True),
        ({"kind": {"$in": ["note", "task"]}}, True),
        ({"kind": {"$nin": ["note"]}}, False),
        ({"$or": [{"kind": "task"}, {"n": 4}]}, True),
        ({"$and": [{"kind": "note"}, {"n": 5}]}, False),
        ({"$nor": [{"kind": "task"}]}, True),
        ({"$not": {"kind": "note"}}, False),
        ({}, True),
    ],
)
def test_matches(selector: dict[str, object], expected: bool) -> None:
    assert matches(validate(selector), DOC) is expected


def test_unsupported_operators_are_refused() -> None:
    with pytest.raises(BadRequest):
        validate({"a": {"$regex": "x"}})
    with pytest.raises(BadRequest):
        validate(["not", "an", "object"])
