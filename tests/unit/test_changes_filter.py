import pytest

from gateway.errors import BadRequest
from gateway.replication.changes_filter import MAX_DEPTH, check_body, check_selector


@pytest.mark.parametrize(
    "selector",
    [
        {},
        {"a": 1},
        {"a": {"b": {"$gt": 1}}},
        {"$or": [{"a": 1}, {"b": {"$in": [1, 2]}}]},
        {"a": {"$regex": "^x", "$exists": True, "$size": 2, "$mod": [3, 1]}},
        {"a": {"$elemMatch": {"$eq": 1}}, "$not": {"b": 1}},
    ],
)
def test_selectors_couchdb_takes_pass(selector: object) -> None:
    assert check_selector(selector) == selector


@pytest.mark.parametrize(
    "selector",
    [
        5,
        [],
        {"a": {"$bogus": 1}},
        {"$and": {"a": 1}},
        {"$or": [1]},
        {"a": {"$mod": [0, 1]}},
        {"a": {"$mod": [1.5, 1]}},
        {"a": {"$size": True}},
        {"a": {"$regex": "("}},
        {"a": {"$in": 1}},
        {"$not": 5},
    ],
)
def test_selectors_couchdb_refuses_are_refused(selector: object) -> None:
    with pytest.raises(BadRequest):
        check_selector(selector)


def test_deep_selectors_are_refused_without_recursing_far() -> None:
    deep: dict[str, object] = {"a": 1}
    for _ in range(MAX_DEPTH + 1):
        deep = {"$and": [deep]}
    with pytest.raises(BadRequest):
        check_selector(deep)


def test_a_body_needs_the_argument_of_its_filter() -> None:
    assert check_body(None, {}) == {}
    for name, body in (("_selector", {"doc_ids": []}), ("_doc_ids", {"selector": {}})):
        with pytest.raises(BadRequest):
            check_body(name, body)
