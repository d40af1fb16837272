"""Checks on what a user writes, before it reaches the upstream.

A refused document in ``_bulk_docs`` is refused alone, as CouchDB reports a failed validation:
the others are written, and the answer carries ``{"id", "error", "reason"}`` in its place.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import BadRequest, CouchError, Forbidden

DESIGN_REFUSED = "design documents are not available through couchgate"


def check_doc(doc_id: str, doc: Any) -> None:
    """Raise the refusal for one document about to be written, if any."""
    if not isinstance(doc, dict):
        raise BadRequest("Document must be a JSON object")
    if doc_id.startswith("_design/"):
        raise Forbidden(DESIGN_REFUSED)


def doc_id_of(doc: Any) -> str:
    if isinstance(doc, dict) and isinstance(doc.get("_id"), str):
        return str(doc["_id"])
    return ""


def split_bulk(docs: list[Any]) -> tuple[list[Any], dict[int, CouchError]]:
    """The documents that may be written, and the refusals by position in the request."""
    kept: list[Any] = []
    refused: dict[int, CouchError] = {}
    for index, doc in enumerate(docs):
        try:
            check_doc(doc_id_of(doc), doc)
        except CouchError as refusal:
            refused[index] = refusal
        else:
            kept.append(doc)
    return kept, refused


def merge_bulk_results(
    docs: list[Any], refused: dict[int, CouchError], upstream: list[Any]
) -> list[Any]:
    """Put the refusals back where their documents stood.

    With ``new_edits=true`` CouchDB answers one entry per document, in order; with
    ``new_edits=false`` only the failures. A positional merge serves the first, appending the
    second.
    """
    errors = {i: refused[i].item(doc_id_of(docs[i])) for i in refused}
    if len(upstream) != len(docs) - len(refused):
        return [*upstream, *errors.values()]
    results = iter(upstream)
    return [errors[i] if i in errors else next(results) for i in range(len(docs))]
