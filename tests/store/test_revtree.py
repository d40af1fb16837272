"""The pure revision-tree rules: winner, conflicts, merging replicated paths, stemming."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couchlite import engine, revtree
from couchlite.revtree import RevNode


def chain(*revs: str, deleted_leaf: bool = False) -> dict[str, RevNode]:
    """A linear tree from oldest to newest."""
    tree: dict[str, RevNode] = {}
    parent = None
    for index, rev in enumerate(revs):
        tree[rev] = RevNode(parent, deleted_leaf and index == len(revs) - 1)
        parent = rev
    return tree


def test_parse_rev_as_couchdb_does() -> None:
    """CouchDB 3.5.2 takes any id and position 0, reads the position as Erlang's integer and
    keeps a 32-character id as 16 bytes (so it must be hex, and prints lower-case)."""
    assert revtree.parse_rev("12-abc") == (12, "abc")
    assert revtree.parse_rev("0-abc") == (0, "abc")
    assert revtree.parse_rev("1-") == (1, "")
    assert revtree.parse_rev("1-a-b") == (1, "a-b")
    assert revtree.normalize("01-a") == revtree.normalize("+1-a") == "1-a"
    assert revtree.normalize("1-" + "AB" * 16) == "1-" + "ab" * 16
    for bad in ("", "abc", "-1-a", "x-1", "1_abc", " 1-a", "1", "1-" + "z" * 32):
        with pytest.raises(ValueError):
            revtree.parse_rev(bad)


def test_higher_position_wins() -> None:
    tree = chain("1-a", "2-b")
    tree["2-a"] = RevNode("1-a", False)
    tree["3-0"] = RevNode("2-a", False)
    assert revtree.winner(tree) == "3-0"
    assert revtree.conflicts(tree) == ["2-b"]


def test_tie_on_position_breaks_on_the_higher_hash_string() -> None:
    tree = {
        "1-a": RevNode(None, False),
        "2-abc": RevNode("1-a", False),
        "2-abd": RevNode("1-a", False),
    }
    assert revtree.winner(tree) == "2-abd"
    assert revtree.leaves(tree) == ["2-abd", "2-abc"]


def test_live_leaf_beats_a_longer_deleted_branch() -> None:
    tree = chain("1-a", "2-b", "3-c", "4-d", deleted_leaf=True)
    tree["2-x"] = RevNode("1-a", False)
    assert revtree.winner(tree) == "2-x"
    assert revtree.conflicts(tree) == []
    assert revtree.deleted_conflicts(tree) == ["4-d"]


def test_all_deleted_the_highest_deleted_wins() -> None:
    tree = chain("1-a", "2-b", deleted_leaf=True)
    tree["3-z"] = RevNode("2-b", True)
    assert revtree.winner(tree) == "3-z"


def test_revisions_object() -> None:
    tree = chain("1-a", "2-b", "3-c")
    assert revtree.revisions(tree, "3-c") == {"start": 3, "ids": ["c", "b", "a"]}
    assert revtree.revisions(tree, "2-b") == {"start": 2, "ids": ["b", "a"]}


def test_merge_path_adds_a_branch_and_is_idempotent() -> None:
    tree = chain("1-a", "2-b")
    merged, added = revtree.merge_path(tree, ["3-x", "2-y", "1-a"], False)
    assert added
    assert merged["2-y"].parent == "1-a"
    assert revtree.leaves(merged) == ["3-x", "2-b"]
    again, added_again = revtree.merge_path(merged, ["3-x", "2-y", "1-a"], False)
    assert not added_again and again == merged


def test_merge_path_rejoins_a_stemmed_root() -> None:
    stemmed = {"3-c": RevNode(None, False), "4-d": RevNode("3-c", False)}
    merged, _ = revtree.merge_path(stemmed, ["5-e", "4-d", "3-c", "2-b"], False)
    assert merged["3-c"].parent == "2-b"
    assert revtree.ancestry(merged, "5-e") == ["5-e", "4-d", "3-c", "2-b"]


def test_merge_path_marks_only_the_leaf_deleted() -> None:
    merged, _ = revtree.merge_path({}, ["2-b", "1-a"], True)
    assert merged == {"1-a": RevNode(None, False), "2-b": RevNode("1-a", True)}


def test_stem_keeps_the_newest_revisions_of_every_leaf() -> None:
    tree = chain("1-a", "2-b", "3-c", "4-d", "5-e")
    tree["3-x"] = RevNode("2-b", False)
    stemmed = revtree.stem(tree, 2)
    assert set(stemmed) == {"5-e", "4-d", "3-x", "2-b"}
    assert stemmed["4-d"].parent is None
    assert stemmed["2-b"].parent is None
    assert revtree.revisions(stemmed, "5-e") == {"start": 5, "ids": ["e", "d"]}


def test_possible_ancestors_are_leaves_below_a_missing_position() -> None:
    tree = chain("1-a", "2-b")
    tree["3-d"] = RevNode("2-b", True)
    tree["2-c"] = RevNode("1-a", False)
    missing = revtree.missing_revs(tree, ["3-new", "3-d", "1-z", "3-new", "3-d"])
    # CouchDB 3.5.2's list: in revision order, each held revision taken out once.
    assert missing == ["1-z", "3-d", "3-new", "3-new"]
    assert revtree.missing_revs({}, ["3-b", "3-a", "3-b"]) == ["3-b", "3-a", "3-b"]
    assert revtree.possible_ancestors(tree, ["3-new"]) == ["2-c"]
    assert revtree.possible_ancestors(tree, ["5-q"]) == ["2-c", "3-d"]


def test_latest_leaves_under() -> None:
    tree = chain("1-a", "2-b", "3-c")
    tree["2-x"] = RevNode("1-a", False)
    assert revtree.leaves_under(tree, "2-b") == ["3-c"]
    assert set(revtree.leaves_under(tree, "1-a")) == {"3-c", "2-x"}


def test_storage_round_trip() -> None:
    tree = chain("1-a", "2-b", deleted_leaf=True)
    assert revtree.loads(revtree.dumps(tree)) == tree


hashes = st.text(alphabet="0123456789abcdef", min_size=1, max_size=3)


@st.composite
def trees(draw: st.DrawFn) -> dict[str, RevNode]:
    """Random trees grown by random edits on random leaves."""
    tree: dict[str, RevNode] = {}
    for _ in range(draw(st.integers(1, 25))):
        leaves = revtree.leaves(tree) if tree else []
        parent = draw(st.sampled_from([None, *leaves])) if tree else None
        if parent is None and tree:
            continue
        pos = revtree.rev_pos(parent) + 1 if parent else 1
        rev = f"{pos}-{draw(hashes)}"
        if rev not in tree:
            tree[rev] = RevNode(parent, draw(st.booleans()))
    return tree


@given(trees(), st.integers(1, 6))
def test_stemming_never_changes_leaves_or_winner(tree: dict[str, RevNode], limit: int) -> None:
    stemmed = revtree.stem(tree, limit)
    assert revtree.leaves(stemmed) == revtree.leaves(tree)
    assert revtree.winner(stemmed) == revtree.winner(tree)
    for leaf in revtree.leaves(stemmed):
        assert len(revtree.ancestry(stemmed, leaf)) <= limit


@given(trees())
def test_merging_every_leaf_path_into_an_empty_tree_rebuilds_it(tree: dict[str, RevNode]) -> None:
    rebuilt: dict[str, RevNode] = {}
    for leaf in revtree.leaves(tree):
        rebuilt, _ = revtree.merge_path(rebuilt, revtree.ancestry(tree, leaf), tree[leaf].deleted)
    assert revtree.leaves(rebuilt) == revtree.leaves(tree)
    assert revtree.winner(rebuilt) == revtree.winner(tree)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.text(max_size=12),
        st.text() | st.integers(-(2**63), 2**64 - 1) | st.booleans(),
        max_size=6,
    )
    | st.dictionaries(st.text(max_size=4), st.none() | st.floats() | st.lists(st.text()))
)
def test_a_body_is_stored_as_json_writes_it(body: dict[str, object]) -> None:
    """Flat bodies (every sealed document's) take orjson's fast path; the text stored is
    json's to the byte, for them and for every other body."""
    assert engine._dump(body) == json.dumps(body, separators=(",", ":"), ensure_ascii=False)
