"""What a request's body must pass before it goes upstream, and the one handler for each kind.

Writes the policy must read are read up to a cap (of a multipart document PUT, only its JSON
part: attachments stream); the POST bodies of read endpoints are held to what CouchDB would
accept. Every refusal happens here, before the upstream is asked and before any byte of an
answer: once a response has started nothing can become a JSON error.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import hdrs, web

from gateway import keys
from gateway.auth.records.devices import Device
from gateway.errors import BadRequest, Forbidden, TooLarge, UnsupportedMediaType
from gateway.limits import quotas
from gateway.replication import changes_filter, multipart, paths, policy, request_shapes
from gateway.replication.paths import Target
from gateway.replication.stream import UpstreamCall, forward, response_from, upstream_error
from gateway.web.bodies import parse_json, read_capped, read_checked_json

LOCAL_DOCS_PER_APP = 256
"""Checkpoints per app database: one per replication peer and direction is what clients make."""
EMPTY_OK = {"_ensure_full_commit"}  # the one POST endpoint CouchDB runs without a body
ATTACHMENT_PUT_REFUSED = "an encrypted app writes attachments sealed, inside their document"


def sealed_only(request: web.Request, target: Target) -> bool:
    """Whether the app's documents must be sealed (encryption = required, the default)."""
    return not paths.app_enabled(request.app[keys.SETTINGS].plaintext_apps, target.app)


async def refuse_attachment_put(
    request: web.Request, device: Device, target: Target
) -> web.StreamResponse:
    """An attachment on its own, in an app whose documents are sealed: it could only be plain."""
    raise Forbidden(ATTACHMENT_PUT_REFUSED)


async def put_local(request: web.Request, device: Device, target: Target) -> web.StreamResponse:
    """A checkpoint: capped, held to a checkpoint's shape in an encrypted app, and counted."""
    if "rev" in request.query:
        policy.check_local_rev(request.query["rev"])
    body = await read_capped(request, policy.LOCAL_DOC_LIMIT)
    doc = parse_json(body)
    policy.check_doc(target.doc_id, doc, encryption_required=sealed_only(request, target))
    await _admit_locals(request, device, target, {target.doc_id: len(body)})
    return await forward(request, device, target, body=body)


async def delete_local(request: web.Request, device: Device, target: Target) -> web.StreamResponse:
    """A checkpoint deleted upstream no longer counts against the app's ``_local`` documents."""
    response = await forward(request, device, target)
    if response.status < 300:
        await request.app[keys.IDENTITIES].locals.forget(device.uid, target.app, target.doc_id)
    return response


async def _admit_locals(
    request: web.Request, device: Device, target: Target, sizes: dict[str, int]
) -> None:
    if sizes:
        await request.app[keys.IDENTITIES].locals.admit(
            device.uid, target.app, sizes, LOCAL_DOCS_PER_APP
        )


async def post_doc(request: web.Request, device: Device, target: Target) -> web.StreamResponse:
    """``POST /db/<app>``: a document whose id the upstream makes (or its own ``_id``), held to
    exactly what a PUT of it would be: JSON only, design documents, encryption, caps, quotas."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")
    body = await read_capped(request, request.app[keys.SETTINGS].max_request_size)
    doc = parse_json(body)
    doc_id = policy.doc_id_of(doc)
    if isinstance(doc, dict) and "_id" in doc and not isinstance(doc["_id"], str):
        raise BadRequest("Document id must be a string")
    policy.check_doc(doc_id, doc, encryption_required=sealed_only(request, target))
    if doc_id.startswith(policy.LOCAL_PREFIX):
        if len(body) > policy.LOCAL_DOC_LIMIT:
            raise TooLarge(f"a _local document may hold at most {policy.LOCAL_DOC_LIMIT} bytes")
        await _admit_locals(request, device, target, {doc_id: len(body)})
    # To the database itself: pouchdb-server takes a POST to "/db/" for something else.
    return await forward(request, device, dataclasses.replace(target, raw_rest=""), body=body)


async def put_doc(request: web.Request, device: Device, target: Target) -> web.StreamResponse:
    """Check the document, then forward it; a multipart body only once all of it is checked.

    Only the two forms CouchDB knows, recognised as CouchDB recognises them (the raw header
    starting ``multipart/related;``, else JSON): any other spelling could be read one way here
    and another upstream, so it is refused.
    """
    limit = request.app[keys.SETTINGS].max_request_size
    sealed = sealed_only(request, target)
    if sealed and any(not policy.is_revision(value) for value in request.query.getall("rev", [])):
        raise Forbidden(policy.BAD_REVISION)
    raw_type = request.headers.get(hdrs.CONTENT_TYPE, "")
    if raw_type.startswith("multipart/related;"):
        boundary = multipart.checked_boundary(request.headers[hdrs.CONTENT_TYPE])
        part = await multipart.read_first_part(request.content, boundary, limit)
        document = parse_json(part.document)
        policy.check_doc(target.doc_id, document, encryption_required=sealed, multipart=True)
        multipart.check_first_part(part, boundary)
        follows = multipart.follows_names(document)
        spool = await multipart.spool_checked(part, boundary, follows, request.content, limit)
        try:
            return await forward(request, device, target, body=spool.chunks())
        finally:
            spool.close()
    if request.content_type != "application/json" or raw_type.lower().startswith("multipart"):
        raise UnsupportedMediaType(
            "Content-Type must be application/json or multipart/related with a boundary"
        )
    body = await read_capped(request, limit)
    policy.check_doc(target.doc_id, parse_json(body), encryption_required=sealed)
    return await forward(request, device, target, body=body)


async def bulk_docs(request: web.Request, device: Device, target: Target) -> web.StreamResponse:
    """``_bulk_docs``: the documents the policy refuses are answered here with their error, the
    rest go upstream, and the two answers are merged (:func:`policy.merge_bulk_results`)."""
    raw = await read_capped(request, request.app[keys.SETTINGS].max_request_size)
    body = parse_json(raw)
    if not isinstance(body, dict) or not isinstance(body.get("docs"), list):
        raise BadRequest("POST body must include `docs` parameter.")
    request_shapes.check_bulk_docs(body)
    docs: list[Any] = body["docs"]
    kept, refused = policy.split_bulk(docs, encryption_required=sealed_only(request, target))
    if past := await quotas.bulk_refusals(request, device, target, docs, refused):
        refused = {**refused, **past}
        kept = [doc for i, doc in enumerate(docs) if i not in refused]
    await _admit_locals(request, device, target, policy.local_sizes(kept))
    if not refused:
        return await forward(request, device, target, body=raw)
    if not kept:
        return web.json_response(policy.merge_bulk_results(docs, refused, []), status=201)
    payload = json.dumps({**body, "docs": kept}).encode()
    async with UpstreamCall(request, device, target, payload, live=False) as up:
        if up.status >= 400:
            return await upstream_error(up, device, target)
        answer = await up.read()
        if up.status >= 300:
            return response_from(up, answer)
        results = parse_json(answer)
        merged = policy.merge_bulk_results(
            docs, refused, results if isinstance(results, list) else []
        )
        return web.json_response(merged, status=up.status)


async def post_changes(request: web.Request, device: Device, target: Target) -> web.StreamResponse:
    """A POST ``_changes`` (its filter's argument in the body), refused as CouchDB refuses one."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")
    raw = await read_capped(request, request.app[keys.SETTINGS].max_request_size)
    if not raw:
        raise BadRequest("Missing request body")
    filter_name = dict(parse_qsl(target.query)).get("filter")
    body = changes_filter.check_body(filter_name, parse_json(raw))
    # Only the chosen filter's argument goes on: CouchDB ignores the rest, pouchdb-server would
    # apply a ``doc_ids`` whatever the filter.
    kept = {name: body[name] for name in ("selector", "doc_ids") if filter_name == "_" + name}
    selector = kept.get("selector")
    if selector is not None and not await request.app[keys.BACKEND].reads_selector_from_query():
        selector = None
    forwarded = json.dumps(kept).encode()
    return await forward(request, device, paths.with_selector(target, selector), body=forwarded)


async def post_endpoint(request: web.Request, device: Device, target: Target) -> web.StreamResponse:
    """Any other POST endpoint (``_revs_diff``, ``_bulk_get``, ``_all_docs``...): JSON whole,
    within the request cap, and of the shape CouchDB would read, or answered here."""
    limit, empty_ok = request.app[keys.SETTINGS].max_request_size, target.endpoint in EMPTY_OK
    body, value = await read_checked_json(request, limit, empty_ok=empty_ok)
    answer = request_shapes.check(target.endpoint, value)
    if answer is not None:
        return web.json_response(answer)
    return await forward(request, device, target, body=body)
