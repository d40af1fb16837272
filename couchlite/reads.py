"""The read side of the engine: documents as CouchDB renders them, and the bulk read endpoints.

Each function runs on a reader connection inside one read transaction, so a document's tree and
its revision bodies always come from the same snapshot.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field, replace
from typing import Any

from . import attachments, revtree
from .engine import Db, get_db
from .errors import BadRequest, NotFound, bad_rev


@dataclass(frozen=True)
class DocOptions:
    """The query options that shape a rendered revision (shared by GET, open_revs, _bulk_get)."""

    revs: bool = False
    revs_info: bool = False
    conflicts: bool = False
    deleted_conflicts: bool = False
    attachments: bool = False
    atts_since: tuple[str, ...] | None = None
    """None: not asked; an empty one (``atts_since=[]``) knows no revision, so every attachment
    written at a position above 0 is sent."""
    latest: bool = False
    follows: bool = False  # multipart: bodies go in parts, the JSON says "follows": true


@dataclass
class Rendered:
    """A revision as JSON plus, for multipart answers, the attachment bodies in order."""

    doc: dict[str, Any]
    parts: list[tuple[str, attachments.AttMeta, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class StoredDoc:
    id: str
    seq: int
    winner: str
    deleted: bool
    tree: dict[str, revtree.RevNode]


def load_doc(conn: sqlite3.Connection, db: int, doc_id: str) -> StoredDoc | None:
    row = conn.execute(
        "SELECT seq, rev, deleted, tree FROM docs WHERE db = ? AND id = ?", (db, doc_id)
    ).fetchone()
    if row is None:
        return None
    return StoredDoc(doc_id, row[0], row[1], bool(row[2]), revtree.loads(row[3]))


def render(
    conn: sqlite3.Connection, db: int, stored: StoredDoc, rev: str, opts: DocOptions
) -> Rendered | None:
    """Revision ``rev`` of ``stored`` as CouchDB shows it, or None when its body is gone."""
    row = conn.execute(
        "SELECT deleted, body, atts FROM revs WHERE db = ? AND doc = ? AND rev = ?",
        (db, stored.id, rev),
    ).fetchone()
    if row is None:
        return None
    doc: dict[str, Any] = {"_id": stored.id, "_rev": rev}
    doc.update(json.loads(row[1]))
    rendered = Rendered(doc)
    if row[2]:
        _render_atts(conn, db, stored, rev, json.loads(row[2]), opts, rendered)
    if row[0]:
        doc["_deleted"] = True
    tree = stored.tree
    if opts.revs:
        doc["_revisions"] = revtree.revisions(tree, rev)
    if opts.revs_info:
        doc["_revs_info"] = _revs_info(conn, db, stored, rev)
    if opts.conflicts and rev == stored.winner and (found := revtree.conflicts(tree)):
        doc["_conflicts"] = found
    if (
        opts.deleted_conflicts
        and rev == stored.winner
        and (found := revtree.deleted_conflicts(tree))
    ):
        doc["_deleted_conflicts"] = found
    return rendered


def _render_atts(
    conn: sqlite3.Connection,
    db: int,
    stored: StoredDoc,
    rev: str,
    atts: attachments.Atts,
    opts: DocOptions,
    rendered: Rendered,
) -> None:
    known_pos = _atts_since_pos(stored, rev, opts.atts_since or ())
    out: dict[str, Any] = {}
    for name, meta in atts.items():
        # atts_since sends what came after the client's revisions; attachments=true, all.
        wanted = meta["revpos"] > known_pos if opts.atts_since is not None else opts.attachments
        if not wanted:
            out[name] = attachments.stub(meta)
            continue
        data = attachments.get_blob(conn, db, meta["digest"]) or b""
        if opts.follows:
            out[name] = attachments.follows_entry(meta)
            rendered.parts.append((name, meta, data))
        else:
            out[name] = attachments.inline(meta, data)
    rendered.doc["_attachments"] = out


def _atts_since_pos(stored: StoredDoc, rev: str, since: tuple[str, ...]) -> int:
    """Highest position among ``atts_since`` revisions that are ancestors of ``rev``.

    The client already holds every attachment with ``revpos`` at or below it (CouchDB's rule).
    """
    if not since:
        return 0
    ancestors = set(revtree.ancestry(stored.tree, rev))
    positions = [revtree.rev_pos(r) for r in since if r in ancestors]
    return max(positions, default=0)


def _revs_info(
    conn: sqlite3.Connection, db: int, stored: StoredDoc, rev: str
) -> list[dict[str, str]]:
    info = []
    for ancestor in revtree.ancestry(stored.tree, rev):
        row = conn.execute(
            "SELECT deleted FROM revs WHERE db = ? AND doc = ? AND rev = ?",
            (db, stored.id, ancestor),
        ).fetchone()
        status = "missing" if row is None else ("deleted" if row[0] else "available")
        info.append({"rev": ancestor, "status": status})
    return info


def _doc_at(
    conn: sqlite3.Connection, name: str, doc_id: str, rev: str | None
) -> tuple[int, StoredDoc, str]:
    """The database id, the stored document and the revision asked for (the winner when none
    is; 404 "deleted" when the winner is a deletion, as CouchDB answers)."""
    db = get_db(conn, name)
    stored = load_doc(conn, db.id, doc_id)
    if stored is None:
        raise NotFound("missing")
    if rev is None:
        if stored.deleted:
            raise NotFound("deleted")
        rev = stored.winner
    return db.id, stored, rev


def open_doc(
    conn: sqlite3.Connection, name: str, doc_id: str, rev: str | None, opts: DocOptions
) -> Rendered:
    """``GET /db/doc``: the winner (404 "deleted" when it is deleted) or the asked revision.

    With ``latest`` it is the winner whatever revision is asked for, as CouchDB 3.5.2 answers
    (the asked one need not even exist; its format is still checked by the caller). A named
    revision comes without ``_revs_info``, ``_conflicts`` or ``_deleted_conflicts``, as there."""
    if opts.latest:
        rev = None
    elif rev is not None:
        # A named revision is read as CouchDB reads one of open_revs: only ``revs`` applies.
        opts = replace(opts, revs_info=False, conflicts=False, deleted_conflicts=False)
    db_id, stored, rev = _doc_at(conn, name, doc_id, rev)
    rendered = render(conn, db_id, stored, rev, opts)
    if rendered is None:
        raise NotFound("missing")
    return rendered


def open_revs(
    conn: sqlite3.Connection, name: str, doc_id: str, revs: list[str] | None, opts: DocOptions
) -> list[tuple[str, Rendered | None]]:
    """``open_revs``: every leaf (``revs=None``) or each asked revision; None marks "missing".
    Of the document options only ``revs`` and the attachment ones apply, as in CouchDB."""
    opts = replace(opts, revs_info=False, conflicts=False, deleted_conflicts=False)
    db = get_db(conn, name)
    stored = load_doc(conn, db.id, doc_id)
    if stored is None:
        if not revs:  # all, or none asked for: CouchDB's 404
            raise NotFound("missing")
        return [(rev, None) for rev in sorted(dict.fromkeys(revs), key=revtree.rev_order)]
    return [(rev, found) for rev, found in _open_revs(conn, db, stored, revs, opts)]


def _open_revs(
    conn: sqlite3.Connection,
    db: Db,
    stored: StoredDoc,
    revs: list[str] | None,
    opts: DocOptions,
) -> list[tuple[str, Rendered | None]]:
    if revs is None:
        wanted = sorted(revtree.leaves(stored.tree), key=revtree.rev_order)
    elif opts.latest:
        wanted = []
        for rev in revs:
            under = revtree.leaves_under(stored.tree, rev) if rev in stored.tree else [rev]
            wanted.extend(r for r in under if r not in wanted)
    else:
        wanted = list(dict.fromkeys(revs))
    found: list[tuple[str, Rendered | None]] = []
    missing: list[tuple[str, Rendered | None]] = []
    for rev in wanted:
        rendered = render(conn, db.id, stored, rev, opts) if rev in stored.tree else None
        (found if rendered is not None else missing).append((rev, rendered))
    # CouchDB answers the revisions it has, then those it lacks, each in revision order.
    found.sort(key=lambda pair: revtree.rev_order(pair[0]))
    missing.sort(key=lambda pair: revtree.rev_order(pair[0]))
    return found + missing


def bulk_get(
    conn: sqlite3.Connection, name: str, requests: list[Any], opts: DocOptions
) -> list[dict[str, Any]]:
    """``_bulk_get``: ``{"id", "docs": [{"ok": doc} | {"error": {...}}]}`` per request."""
    db = get_db(conn, name)
    results: list[dict[str, Any]] = []
    for req in requests:
        if not isinstance(req, dict) or not isinstance(req.get("id"), str):
            # CouchDB's words for anything without a string id ({"id": 5} is its 500).
            error = _bulk_error(None, None, "bad_request", "document must be a JSON object")
            results.append({"id": None, "docs": [error]})
            continue
        doc_id: str = req["id"]
        try:
            rev, req_opts = _bulk_get_request(req, opts)
        except _BadItem as bad:
            results.append(
                {"id": doc_id, "docs": [_bulk_error(doc_id, bad.rev, "bad_request", bad.reason)]}
            )
            continue
        stored = load_doc(conn, db.id, doc_id)
        docs: list[dict[str, Any]] = []
        if stored is None:
            docs.append(_bulk_error(doc_id, rev or "undefined", "not_found", "missing"))
        elif rev is None:
            # Every leaf, deleted ones too, in the key tree's order (CouchDB's open_revs=all
            # inside _bulk_get).
            for leaf in revtree.tree_order_leaves(stored.tree):
                found = render(conn, db.id, stored, leaf, req_opts)
                docs.append(
                    {"ok": found.doc}
                    if found
                    else _bulk_error(doc_id, leaf, "not_found", "missing")
                )
        elif req_opts.latest and rev in stored.tree:
            # The leaves under the revision in the key tree's order (CouchDB's _bulk_get does
            # not sort them, as GET ?open_revs does).
            under = set(revtree.leaves_under(stored.tree, rev))
            for leaf in revtree.tree_order_leaves(stored.tree):
                if leaf in under:
                    found = render(conn, db.id, stored, leaf, req_opts)
                    docs.append(
                        {"ok": found.doc}
                        if found
                        else _bulk_error(doc_id, leaf, "not_found", "missing")
                    )
        else:
            for got_rev, got in _open_revs(conn, db, stored, [rev], req_opts):
                docs.append(
                    {"ok": got.doc} if got else _bulk_error(doc_id, got_rev, "not_found", "missing")
                )
        results.append({"id": doc_id, "docs": docs})
    return results


class _BadItem(Exception):
    def __init__(self, rev: object, reason: str) -> None:
        super().__init__(reason)
        self.rev, self.reason = rev, reason


def _bulk_get_request(req: dict[str, Any], opts: DocOptions) -> tuple[str | None, DocOptions]:
    """One ``_bulk_get`` item's revision and options; ``_BadItem`` carries CouchDB's refusal
    (per item, naming the offending value as its ``rev``)."""
    rev = req.get("rev")
    if rev is not None:
        try:
            rev = revtree.normalize(rev)
        except ValueError:
            raise _BadItem(rev, "Invalid rev format") from None
    since = req.get("atts_since")
    if since is None:
        return rev, opts
    if not isinstance(since, list):
        raise _BadItem(since, "att_since value must be array of revs.")
    checked = []
    for value in since:
        try:
            checked.append(revtree.normalize(value))
        except ValueError:
            raise _BadItem(value, "Invalid rev format") from None
    if not checked:
        return rev, opts  # _bulk_get takes an empty atts_since for none
    return rev, DocOptions(**{**opts.__dict__, "atts_since": tuple(checked)})


def _bulk_error(doc_id: str | None, rev: object, error: str, reason: str) -> dict[str, Any]:
    return {"error": {"id": doc_id, "rev": rev, "error": error, "reason": reason}}


def revs_diff(conn: sqlite3.Connection, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """``_revs_diff``: for each id, the revisions we lack and the leaves that may be ancestors."""
    db = get_db(conn, name)
    answer: dict[str, Any] = {}
    for doc_id, revs in body.items():
        # CouchDB answers 500 (function_clause) for a non-list or a non-string; 400 here.
        if not isinstance(revs, list) or not all(isinstance(r, str) for r in revs):
            raise BadRequest("Revisions must be a list")
        try:
            asked = [revtree.normalize(r) for r in revs]
        except ValueError:
            raise bad_rev() from None
        stored = load_doc(conn, db.id, doc_id)
        tree = stored.tree if stored else {}
        missing = revtree.missing_revs(tree, asked)
        if not missing:
            continue
        entry: dict[str, Any] = {"missing": missing}
        if ancestors := revtree.possible_ancestors(tree, missing):
            entry["possible_ancestors"] = ancestors
        answer[doc_id] = entry
    return answer


def conflicted_count(conn: sqlite3.Connection, name: str) -> int:
    """How many documents of ``name`` have more than one live leaf (a conflict not settled).

    CouchDB gives this figure only through a view over ``_conflicts``; a replica that settles
    its own conflicts (the folder client, for its ``status``) needs it without one.
    """
    db = get_db(conn, name)
    rows = conn.execute("SELECT tree FROM docs WHERE db = ? AND deleted = 0", (db.id,))
    return sum(1 for (tree,) in rows if revtree.conflicts(revtree.loads(tree)))


def get_local(
    conn: sqlite3.Connection, name: str, doc_id: str, revs: bool = False
) -> dict[str, Any]:
    db = get_db(conn, name)
    row = conn.execute(
        "SELECT rev, body FROM local_docs WHERE db = ? AND id = ?", (db.id, doc_id)
    ).fetchone()
    if row is None:
        raise NotFound("missing")
    doc: dict[str, Any] = {"_id": doc_id, "_rev": f"0-{row[0]}"}
    doc.update(json.loads(row[1]))
    if revs:
        doc["_revisions"] = {"start": 0, "ids": [str(row[0])]}
    return doc


def get_attachment(
    conn: sqlite3.Connection, name: str, doc_id: str, att: str, rev: str | None
) -> tuple[attachments.AttMeta, bytes]:
    """An attachment of the winner, or of revision ``rev`` while its body is kept."""
    db_id, _, rev = _doc_at(conn, name, doc_id, rev)
    row = conn.execute(
        "SELECT atts FROM revs WHERE db = ? AND doc = ? AND rev = ?", (db_id, doc_id, rev)
    ).fetchone()
    if row is None:
        raise NotFound("missing")
    meta = (json.loads(row[0]) if row[0] else {}).get(att)
    if meta is None:
        raise NotFound("Document is missing attachment")
    data = attachments.get_blob(conn, db_id, meta["digest"])
    if data is None:
        raise NotFound("Document is missing attachment")
    return meta, data
