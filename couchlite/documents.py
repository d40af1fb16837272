"""Validating a written document into an ``Edit``: CouchDB's rules on ids and special fields.

Pure: no storage. The engine applies an ``Edit``; handlers build one from JSON (``_bulk_docs``,
``PUT``) or from a multipart body (``follows`` attachments).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import revtree
from .errors import BadRequest, DocValidation, IllegalDocId, bad_rev

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
        # What the _replicator database's scheduler writes back, and 3.x's access lists.
        "_replication_state",
        "_replication_state_time",
        "_replication_state_reason",
        "_replication_id",
        "_replication_stats",
        "_access",
    }
)
# Special members kept in the stored body (the rest are consumed or only ever rendered).
_KEPT = frozenset(name for name in _SPECIAL if name.startswith(("_replication_", "_access")))


def valid_db_name(name: str) -> bool:
    return len(name) <= MAX_DB_NAME and _DB_NAME_RE.match(name) is not None


def check_doc_id(doc_id: object) -> str:
    """CouchDB's id rule: a non-empty string; ``_`` only for ``_design/`` and ``_local/``."""
    if not isinstance(doc_id, str):
        raise IllegalDocId("Document id must be a string")
    if doc_id == "":
        raise IllegalDocId("Document id must not be empty")
    if doc_id.startswith("_") and not doc_id.startswith(("_design/", "_local/")):
        raise IllegalDocId("Only reserved document ids may start with underscore.")
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
    """Validate one written document as ``couch_doc:from_json_obj`` does; every refusal here
    refuses the whole request (CouchDB parses a ``_bulk_docs`` body before writing any of it).
    ``doc_id``/``rev`` come from the URL when there is one."""
    if not isinstance(obj, Mapping):
        raise BadRequest("Document must be a JSON object")
    raw_id = doc_id if doc_id is not None else obj.get("_id")
    if raw_id is None:
        raise BadRequest("Document id is missing")  # callers generate ids before this
    checked_id = check_doc_id(raw_id)
    body: dict[str, Any] = {}
    for key, value in obj.items():
        if not key.startswith("_") or key in _KEPT:
            body[key] = value
        elif key not in _SPECIAL:
            raise DocValidation(f"Bad special document member: {key}")
    deleted = obj.get("_deleted", False)
    if not isinstance(deleted, bool):
        raise DocValidation("Bad special document member: _deleted")
    url_rev = _normalized(rev)
    doc_rev = _normalized(obj["_rev"]) if "_rev" in obj else url_rev
    if url_rev is not None and doc_rev != url_rev:
        raise BadRequest("Document rev from request body and query string have different values")
    path = _revisions_path(obj.get("_revisions"))
    if path is not None:
        # CouchDB takes _revisions as the truth when both are given.
        doc_rev = path[0]
    if not new_edits:
        if doc_rev is None:
            raise BadRequest(
                "When `new_edits: false`, the document needs `_rev` or `_revisions` specified"
            )
        if path is None:
            path = [doc_rev]
    atts = obj.get("_attachments")
    if atts is not None and not isinstance(atts, Mapping):
        raise DocValidation("Bad special document member: _attachments")
    return Edit(
        id=checked_id,
        rev=doc_rev,
        path=path,
        deleted=deleted,
        body=body,
        attachments=_attachments(atts) if atts else None,
    )


def _normalized(rev: object) -> str | None:
    if rev is None:
        return None
    try:
        return revtree.normalize(rev)  # type: ignore[arg-type]
    except ValueError:
        raise bad_rev() from None


def _attachments(atts: Mapping[str, Any]) -> dict[str, Any]:
    """Names and inline data checked up front, as CouchDB does while parsing the document.

    Entries that are not objects are dropped: CouchDB ignores them.
    """
    checked: dict[str, Any] = {}
    for name, spec in atts.items():
        if not isinstance(spec, Mapping):
            continue
        check_attachment_name(name)
        if not spec.get("stub") and not spec.get("follows"):
            data = spec.get("data")
            if not isinstance(data, str) or not _is_base64(data):
                raise BadRequest(f"Invalid attachment data for {name}")
        checked[name] = spec
    return checked


def check_attachment_name(name: str) -> None:
    if name.startswith("_"):
        raise BadRequest(f"Attachment name '{name}' starts with prohibited character '_'")


def _is_base64(data: str) -> bool:
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _revisions_path(raw: object) -> list[str] | None:
    """``_revisions`` as a path of revisions, newest first, with CouchDB's refusals."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise DocValidation("Bad special document member: _revisions")
    start, ids = raw.get("start"), raw.get("ids")
    if not isinstance(start, int) or isinstance(start, bool):
        raise DocValidation("_revisions.start isn't an integer.")
    if not isinstance(ids, list):
        raise DocValidation("_revisions.ids isn't a array.")
    if not ids:
        # CouchDB answers 500 (function_clause) here; a refusal is what it means.
        raise bad_rev()
    if start < 0:
        raise DocValidation("RevId isn't a string")  # CouchDB's words for a negative start
    path: list[str] = []
    for offset, rev_id in enumerate(ids):
        if not isinstance(rev_id, str):
            raise DocValidation("RevId isn't a string")
        try:
            checked = revtree.parse_rev_id(rev_id)
        except ValueError:
            raise DocValidation("RevId isn't a valid hexadecimal") from None
        # CouchDB keeps ids below position 0 too (start 1 with three ids); a revision here
        # names its position, so the path ends at 0 and the rest of the ancestry is dropped.
        if start - offset >= 0:
            path.append(f"{start - offset}-{checked}")
    return path
