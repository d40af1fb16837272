"""The bodies of the replication endpoints couchgate forwards without rewriting (``_revs_diff``,
``_bulk_get``, ``_all_docs``), held to the shapes CouchDB 3.5.2 reads.

CouchDB refuses some wrong shapes itself, in words kept here; others it cannot read at all and
answers 500 ``function_clause`` (``{"a": [5]}`` to ``_revs_diff``, ``{"docs": 5}`` to
``_bulk_get``), and pouchdb-server answers those with a 500 or never: couchgate refuses them with
a 400 before anything is forwarded. A ``_bulk_get`` of no documents is answered here, as CouchDB
answers it (pouchdb-server never does).
"""

from __future__ import annotations

from typing import Any

from gateway.errors import BadRequest

NOT_AN_OBJECT = "Request body must be a JSON object"
NO_DOCS = "Missing JSON list of 'docs'."
KEYS_NOT_A_LIST = "`keys` body member must be an array."
REVS_DIFF_SHAPE = "each document id must map to a list of revisions (strings)"
BULK_GET_ID = "each requested document's `id` must be a string"
NOTHING_TO_GET: dict[str, Any] = {"results": []}


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
