"""Validating a written document into an ``Edit``: CouchDB's rules on ids and special fields.

Pure: no storage. The engine applies an ``Edit``; handlers build one from JSON (``_bulk_docs``,
``PUT``) or from a multipart body (``follows`` attachments).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import BadRequest

from . import revtree
from .errors import DocValidation, bad_rev

_DB_NAME_RE = re.compile(r"^[a-z][a-z0-9_$()+/-]*$")
MAX_DB_NAME = 238

# Underscore members CouchDB accepts in a written document (the rest are "Bad special member").
_SPECIAL = frozenset(
    {
        "_id",
        "_rev",
        "_attachments",
        "_deleted",
        "_revisions",
        "_revs_info",
        "_conflicts",
        "_deleted_conflicts",
        "_local_seq",
    }
)


def valid_db_name(name: str) -> bool:
    return len(name) <= MAX_DB_NAME and _DB_NAME_RE.match(name) is not None


def check_doc_id(doc_id: object) -> str:
    """CouchDB's id rule: a non-empty string; ``_`` only for ``_design/`` and ``_local/``."""
    if not isinstance(doc_id, str) or doc_id == "":
        raise BadRequest("Document id must be a string")
    if doc_id.startswith("_") and not doc_id.startswith(("_design/", "_local/")):
        raise BadRequest("Only reserved document ids may start with underscore.")
    return doc_id


@dataclass
class Edit:
    """One document write, validated. ``path`` is the replicated ancestry, newest first."""

    id: str
    rev: str | None
    path: list[str] | None
    deleted: bool
    body: dict[str, Any]
    attachments: dict[str, Any] | None
    follows: dict[str, bytes] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return self.id.startswith("_local/")


def parse_edit(
    obj: object, *, new_edits: bool, doc_id: str | None = None, rev: str | None = None
) -> Edit:
    """Validate one written document. ``doc_id``/``rev`` come from the URL when there is one."""
    if not isinstance(obj, Mapping):
        raise BadRequest("Document must be a JSON object")
    raw_id = doc_id if doc_id is not None else obj.get("_id")
    if raw_id is None:
        raise BadRequest("Document id is missing")  # callers generate ids before this
    checked_id = check_doc_id(raw_id)
    body: dict[str, Any] = {}
    for key, value in obj.items():
        if not key.startswith("_"):
            body[key] = value
        elif key not in _SPECIAL:
            raise DocValidation(f"Bad special document member: {key}")
    doc_rev = obj.get("_rev", rev)
    if rev is not None and doc_rev != rev:
        raise BadRequest("Document rev from request body and query string have different values")
    if (
        doc_rev is not None
        and not checked_id.startswith("_local/")
        and not revtree.is_valid_rev(doc_rev)
    ):
        raise bad_rev()
    path = _revisions_path(obj.get("_revisions"))
    if doc_rev is None and path:
        doc_rev = path[0]
    if doc_rev is not None and path is not None and path[0] != doc_rev:
        # CouchDB takes _revisions as the truth when both are given.
        doc_rev = path[0]
    if not new_edits and not checked_id.startswith("_local/"):
        if doc_rev is None:
            raise BadRequest("When `new_edits: false`, the document needs `_rev` or `_revisions`.")
        if path is None:
            path = [doc_rev]
    atts = obj.get("_attachments")
    if atts is not None and not isinstance(atts, Mapping):
        raise BadRequest("_attachments must be an object")
    return Edit(
        id=checked_id,
        rev=doc_rev if isinstance(doc_rev, str) else None,
        path=path,
        deleted=bool(obj.get("_deleted", False)),
        body=body,
        attachments=dict(atts) if atts else None,
    )


def _revisions_path(raw: object) -> list[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise bad_rev()
    start, ids = raw.get("start"), raw.get("ids")
    if not isinstance(start, int) or not isinstance(ids, list) or not ids:
        raise bad_rev()
    if start - len(ids) < 0 or not all(isinstance(i, str) and i for i in ids):
        raise bad_rev()
    path = [f"{start - offset}-{rev_id}" for offset, rev_id in enumerate(ids)]
    if not all(revtree.is_valid_rev(rev) for rev in path):
        raise bad_rev()
    return path
