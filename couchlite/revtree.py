"""Revision trees as pure functions: CouchDB's winner rule, path merging and stemming.

A tree is a flat mapping ``rev -> RevNode(parent, deleted)``. CouchDB stores a list of rooted
paths (``couch_key_tree``); a parent pointer per revision holds the same information, because a
revision id names its position (``N-hash``) and so its depth. A node whose parent was stemmed away
simply has ``parent=None`` at a position above 1, exactly like the root of a stemmed CouchDB path.

Nothing here touches storage: the engine loads a tree, calls these functions and saves the result,
which keeps the subtle rules (which leaf wins, what a replicated path adds) unit-testable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson

# CouchDB splits at the first "-" and reads the position with Erlang's list_to_integer (an
# optional "+", then digits, so "01" and "+1" are 1); the id is any string, except that 32
# characters must be hexadecimal (CouchDB stores those as 16 bytes and prints them lower-case).
_POS_RE = re.compile(r"^\+?[0-9]+$")
_HEX32_RE = re.compile(r"^[0-9a-fA-F]{32}$")


@dataclass(frozen=True, slots=True)
class RevNode:
    """One revision: its parent (``None`` for a root, original or stemmed) and its deleted flag."""

    parent: str | None
    deleted: bool


Tree = Mapping[str, RevNode]


def parse_rev(rev: str) -> tuple[int, str]:
    """``"3-abc"`` -> ``(3, "abc")``; ``ValueError`` for anything CouchDB would call malformed."""
    if not isinstance(rev, str):
        raise ValueError("a revision is a string")
    pos, sep, rev_id = rev.partition("-")
    if not sep or _POS_RE.match(pos) is None:
        raise ValueError("invalid revision position")
    return int(pos), parse_rev_id(rev_id)


def parse_rev_id(rev_id: str) -> str:
    """A revision id as CouchDB keeps it (32 characters: hexadecimal, lower-cased)."""
    if len(rev_id.encode()) == 32:
        if _HEX32_RE.match(rev_id) is None:
            raise ValueError("a 32-character revision id is hexadecimal")
        return rev_id.lower()
    return rev_id


def normalize(rev: str) -> str:
    """The revision as CouchDB echoes it (``"01-A..."`` is ``"1-a..."``); ``ValueError`` if bad."""
    pos, rev_id = parse_rev(rev)
    return f"{pos}-{rev_id}"


def is_valid_rev(rev: object) -> bool:
    try:
        parse_rev(rev)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


def rev_pos(rev: str) -> int:
    return parse_rev(rev)[0]


def _sort_key(tree: Tree, rev: str) -> tuple[bool, int, bytes]:
    """CouchDB's order of leaves: live before deleted, then higher position, then higher id,
    compared as CouchDB stores it (bytes; a 32-digit hex id as its 16 bytes)."""
    return (not tree[rev].deleted, *rev_order(rev))


def rev_order(rev: str) -> tuple[int, bytes]:
    """CouchDB's order of two revisions: position, then id as stored (bytes)."""
    pos, rev_id = parse_rev(rev)
    return pos, bytes.fromhex(rev_id) if _HEX32_RE.match(rev_id) else rev_id.encode()


def tree_order_leaves(tree: Tree) -> list[str]:
    """Leaves in the order of CouchDB's key tree, depth first: its roots (several, after
    replicated stems) newest first, each one's children oldest first (``_bulk_get`` without a
    ``rev`` lists them so in CouchDB 3.5.2)."""
    children: dict[str, list[str]] = {}
    roots: list[str] = []
    for rev, node in tree.items():
        if node.parent is not None and node.parent in tree:
            children.setdefault(node.parent, []).append(rev)
        else:
            roots.append(rev)
    found: list[str] = []
    stack = sorted(roots, key=rev_order)
    while stack:
        rev = stack.pop()
        kids = children.get(rev)
        if kids:
            stack.extend(sorted(kids, key=rev_order, reverse=True))
        else:
            found.append(rev)
    return found


def leaves(tree: Tree) -> list[str]:
    """All leaf revisions, winner first, in the order CouchDB lists them (``style=all_docs``)."""
    parents = {node.parent for node in tree.values()}
    found = [rev for rev in tree if rev not in parents]
    found.sort(key=lambda rev: _sort_key(tree, rev), reverse=True)
    return found


def winner(tree: Tree) -> str:
    """The winning revision: deterministic, so every replica picks the same one."""
    found = leaves(tree)
    if not found:
        raise ValueError("empty revision tree")
    return found[0]


def is_leaf(tree: Tree, rev: str) -> bool:
    return rev in tree and all(node.parent != rev for node in tree.values())


def conflicts(tree: Tree) -> list[str]:
    """Live leaves that lost (``_conflicts``)."""
    return [rev for rev in leaves(tree)[1:] if not tree[rev].deleted]


def deleted_conflicts(tree: Tree) -> list[str]:
    """Deleted leaves that lost (``_deleted_conflicts``)."""
    return [rev for rev in leaves(tree)[1:] if tree[rev].deleted]


def ancestry(tree: Tree, rev: str) -> list[str]:
    """``rev`` and its known ancestors, newest first (stops where stemming cut the path)."""
    path: list[str] = []
    current: str | None = rev
    while current is not None and current in tree:
        path.append(current)
        current = tree[current].parent
    return path


def revisions(tree: Tree, rev: str) -> dict[str, object]:
    """The ``_revisions`` object of ``rev``: ``{"start": pos, "ids": [hash, ...]}``."""
    path = ancestry(tree, rev)
    return {"start": rev_pos(rev), "ids": [parse_rev(r)[1] for r in path]}


def leaves_under(tree: Tree, rev: str) -> list[str]:
    """The leaves that descend from ``rev`` (itself when it is a leaf): what ``latest`` answers."""
    return [leaf for leaf in leaves(tree) if rev in ancestry(tree, leaf)]


def add_child(tree: Tree, parent: str | None, rev: str, deleted: bool) -> dict[str, RevNode]:
    """A copy of ``tree`` with ``rev`` appended under ``parent`` (an interactive edit)."""
    merged = dict(tree)
    merged[rev] = RevNode(parent, deleted)
    return merged


def merge_path(tree: Tree, path: list[str], deleted: bool) -> tuple[dict[str, RevNode], bool]:
    """Merge a replicated revision path (newest first, as from ``_revisions``) into ``tree``.

    Returns the new tree and whether the leaf was new. Existing nodes are never rewritten except
    that a stemmed root learns its parent when the incoming path still knows it, which is how
    CouchDB re-joins a branch. Intermediate revisions only known by id are marked live; their
    deleted flag is unknown and only leaves' flags matter for the winner.
    """
    if not path:
        raise ValueError("empty revision path")
    merged = dict(tree)
    if path[0] in merged:
        return merged, False
    for index, rev in enumerate(path):
        parent = path[index + 1] if index + 1 < len(path) else None
        existing = merged.get(rev)
        if existing is not None:
            if existing.parent is None and parent is not None:
                merged[rev] = RevNode(parent, existing.deleted)
            continue
        merged[rev] = RevNode(parent, deleted if index == 0 else False)
    return merged, True


def graft(tree: Tree, path: list[str]) -> tuple[dict[str, RevNode], bool] | None:
    """A replicated path that names a revision ``tree`` has as a root (a stemmed or lone one)
    together with its ancestors: CouchDB's key tree re-joins the root under them (a change),
    ``None`` when there is nothing to join. The flag says whether the path also reaches another
    branch of the tree: CouchDB then merges it there first and the root's revision takes the
    incoming body; otherwise the root keeps its own."""
    root = tree.get(path[0])
    if root is None or root.parent is not None or len(path) < 2:
        return None
    joins = any(rev in tree for rev in path[1:])
    merged = dict(tree)
    merged[path[0]] = RevNode(path[1], root.deleted)
    for index, rev in enumerate(path[1:], start=1):
        parent = path[index + 1] if index + 1 < len(path) else None
        existing = merged.get(rev)
        if existing is None:
            merged[rev] = RevNode(parent, False)
        elif existing.parent is None and parent is not None:
            merged[rev] = RevNode(parent, existing.deleted)
    return merged, joins


def stem(tree: Tree, limit: int) -> dict[str, RevNode]:
    """Keep, for every leaf, only its newest ``limit`` revisions (CouchDB's ``_revs_limit``)."""
    keep: set[str] = set()
    for leaf in leaves(tree):
        keep.update(ancestry(tree, leaf)[:limit])
    stemmed: dict[str, RevNode] = {}
    for rev, node in tree.items():
        if rev not in keep:
            continue
        parent = node.parent if node.parent in keep else None
        stemmed[rev] = node if parent == node.parent else RevNode(parent, node.deleted)
    return stemmed


def missing_revs(tree: Tree, revs: Iterable[str]) -> list[str]:
    """The revisions of ``revs`` this tree does not hold (``_revs_diff``), as CouchDB 3.5.2 lists
    them: in revision order, each held one taken out once (so a repeated one may stay); for a
    document it has never seen (an empty ``tree`` here), the request's list as it is."""
    asked = list(revs)
    if not tree:
        return asked
    missing = sorted(asked, key=rev_order)
    for rev in set(asked) & tree.keys():
        missing.remove(rev)
    return missing


def possible_ancestors(tree: Tree, missing: list[str]) -> list[str]:
    """Leaves older than some missing revision: what a replicator may send attachments against."""
    if not missing:
        return []
    top = max(rev_pos(rev) for rev in missing if is_valid_rev(rev))
    return [leaf for leaf in leaves(tree) if rev_pos(leaf) < top]


def dumps(tree: Tree) -> str:
    """Compact JSON for storage: ``{rev: [parent, deleted]}`` (read only by :func:`loads`;
    ``orjson``, as every write and read of a document stores and loads its tree)."""
    return orjson.dumps(
        {rev: [node.parent, 1 if node.deleted else 0] for rev, node in tree.items()}
    ).decode()


def loads(text: str) -> dict[str, RevNode]:
    raw: dict[str, list[object]] = orjson.loads(text)
    return {rev: RevNode(_str_or_none(pair[0]), bool(pair[1])) for rev, pair in raw.items()}


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
