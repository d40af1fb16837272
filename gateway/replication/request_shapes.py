"""The bodies of the replication endpoints couchgate forwards without rewriting (``_revs_diff``,
``_bulk_get``, ``_all_docs``), and the parts of written documents CouchDB parses itself
(``_attachments``, ``_bulk_docs``' ``new_edits``), held to the shapes CouchDB 3.5.2 reads.

CouchDB refuses some wrong shapes itself, in words kept here; others it cannot read at all and
answers 500 ``function_clause`` (``{"a": [5]}`` to ``_revs_diff``, ``{"docs": 5}`` to
``_bulk_get``), and pouchdb-server answers those with a 500 or never: couchgate refuses them with
a 400 before anything is forwarded. A ``_bulk_get`` of no documents is answered here, as CouchDB
answers it (pouchdb-server never does).
"""

from __future__ import annotations

import binascii
from typing import Any

from couchlite.errors import MissingStub
from gateway.errors import BadRequest

NOT_AN_OBJECT = "Request body must be a JSON object"
NO_DOCS = "Missing JSON list of 'docs'."
KEYS_NOT_A_LIST = "`keys` body member must be an array."
REVS_DIFF_SHAPE = "each document id must map to a list of revisions (strings)"
BULK_GET_ID = "each requested document's `id` must be a string"
NOTHING_TO_GET: dict[str, Any] = {"results": []}
NEW_EDITS_NOT_BOOLEAN = "`new_edits` must be true or false"


def check(endpoint: str, body: Any) -> dict[str, Any] | None:
    """Refuse a body of a shape CouchDB cannot read; the answer itself where there is nothing
    for the upstream to do, else None (forward it)."""
    if endpoint not in ("_revs_diff", "_bulk_get", "_all_docs"):
        return None
    if not isinstance(body, dict):
        raise BadRequest(NOT_AN_OBJECT)
    if endpoint == "_revs_diff":
        for revs in body.values():
            if not isinstance(revs, list) or not all(isinstance(rev, str) for rev in revs):
                raise BadRequest(REVS_DIFF_SHAPE)
        return None
    if endpoint == "_all_docs":
        if "keys" in body and not isinstance(body["keys"], list):
            raise BadRequest(KEYS_NOT_A_LIST)
        return None
    docs = body.get("docs")
    if not isinstance(docs, list):
        raise BadRequest(NO_DOCS)
    if not docs:
        return NOTHING_TO_GET
    for doc in docs:
        if isinstance(doc, dict) and "id" in doc and not isinstance(doc["id"], str):
            raise BadRequest(BULK_GET_ID)
    return None


def check_bulk_docs(body: dict[str, Any]) -> None:
    """A ``_bulk_docs`` body CouchDB can read, refused whole as CouchDB refuses it: a
    ``new_edits`` that is not a boolean (CouchDB: 500 ``function_clause``), and any document's
    attachments as :func:`check_attachments` reads them (CouchDB refuses the whole request for
    one bad attachment, 400 or 412, never per document)."""
    if "new_edits" in body and not isinstance(body["new_edits"], bool):
        raise BadRequest(NEW_EDITS_NOT_BOOLEAN)
    for doc in body["docs"]:
        if isinstance(doc, dict) and "_attachments" in doc:
            doc_id = doc.get("_id")
            check_attachments(doc_id if isinstance(doc_id, str) else "", doc["_attachments"])


def check_attachments(doc_id: str, attachments: object, *, multipart: bool = False) -> None:
    """Refuse an ``_attachments`` CouchDB cannot read, with the answer CouchDB gives the nearest
    shape it can (checked against 3.5.2):

    - ``data`` that is not a string, or not strict padded base64, or an entry with neither
      ``data``, ``stub: true`` nor ``follows: true``: 400 ``Invalid attachment data``
      (pouchdb-server dies on ``"data": 5``; CouchDB alone skips spaces inside base64, which
      pouchdb-server answers with 500 and the embedded store refuses, so no space passes);
    - ``follows: true`` outside a multipart body, where nothing follows: the same 400 (CouchDB:
      500 ``function_clause``; pouchdb-server dies);
    - a ``content_type`` that is neither a string nor a list: the same 400 (CouchDB: 500);
    - a stub whose ``md5-`` digest is not padded base64: 412 ``missing_stub``, what CouchDB
      answers a stub whose digest it can read but does not hold (for this one: 500).

    Entries that are not objects CouchDB ignores, and a non-object ``_attachments`` it refuses
    itself (``doc_validation``), so both pass."""
    if not isinstance(attachments, dict):
        return
    for name, entry in attachments.items():
        if not isinstance(entry, dict):
            continue
        bad_data = BadRequest(f"Invalid attachment data for {name}")
        if "content_type" in entry and not isinstance(entry["content_type"], str | list):
            raise bad_data
        if entry.get("stub") is True:
            if not _readable_digest(entry.get("digest")):
                raise MissingStub(f"Invalid attachment stub in {doc_id} for {name}")
        elif entry.get("follows") is True:
            if not multipart:
                raise bad_data
        elif not _is_base64(entry.get("data")):
            raise bad_data


def _readable_digest(digest: object) -> bool:
    """Whether CouchDB can read a stub's digest: only ``md5-`` digests are decoded (others are
    looked up as they are), and they must be padded base64."""
    if not isinstance(digest, str) or not digest.startswith("md5-"):
        return True
    return _is_base64(digest.removeprefix("md5-"))


def _is_base64(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        return False
    return True
