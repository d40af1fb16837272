"""Document, attachment and bulk endpoints (``/db/doc``, ``/db/doc/att``, ``_bulk_*``, ...)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from .. import engine, reads
from ..documents import Edit, check_attachment_name, check_doc_id, parse_edit
from ..errors import BadRequest, Conflict, CouchError, MethodNotAllowed
from . import all_docs, multipart
from .params import (
    json_body,
    json_object,
    json_param,
    json_response,
    option,
    rev_list,
    rev_param,
)
from .state import STATE


async def document(
    request: web.Request, db: str, doc_id: str, att_segments: list[str]
) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD"):
        check_doc_id(doc_id)  # a read of any id is just "missing", as in CouchDB
    if doc_id.startswith("_local/"):
        if att_segments:
            raise BadRequest("_local documents do not accept attachments.")
        return await _local(request, db, doc_id)
    if att_segments:
        return await _attachment(request, db, doc_id, "/".join(att_segments))
    if request.method in ("GET", "HEAD"):
        return await _get(request, db, doc_id)
    if request.method == "PUT":
        return await _put(request, db, doc_id)
    if request.method == "DELETE":
        return await _delete(request, db, doc_id)
    raise MethodNotAllowed(("DELETE", "GET", "HEAD", "PUT"))


def _options(request: web.Request, follows: bool = False) -> reads.DocOptions:
    q = request.query
    meta = option(q, "meta")
    since = json_param(q, "atts_since")
    return reads.DocOptions(
        revs=option(q, "revs"),  # meta=true is conflicts, deleted_conflicts and revs_info
        revs_info=option(q, "revs_info") or meta,
        conflicts=option(q, "conflicts") or meta,
        deleted_conflicts=option(q, "deleted_conflicts") or meta,
        attachments=option(q, "attachments"),
        atts_since=tuple(rev_list(since, "atts_since")) if since is not None else None,
        latest=option(q, "latest"),
        follows=follows,
    )


def _accepts(request: web.Request, mime: str) -> bool:
    """Whether the client takes ``mime``, by mochiweb's rule that CouchDB uses: no ``Accept`` at
    all takes anything; else the type itself, ``type/*`` or ``*/*`` with a non-zero q."""
    header = request.headers.get("Accept")
    if header is None:
        return True
    kind = mime.split("/", 1)[0]
    for item in header.split(","):
        name, *params = (part.strip() for part in item.split(";"))
        if name.lower() not in (mime, f"{kind}/*", "*/*"):
            continue
        if all(not _zero_q(param) for param in params):
            return True
    return False


def _zero_q(param: str) -> bool:
    key, _, value = param.partition("=")
    if key.strip().lower() != "q":
        return False
    try:
        return float(value) == 0
    except ValueError:
        return False


async def _get(request: web.Request, db: str, doc_id: str) -> web.StreamResponse:
    storage = request.app[STATE].storage
    raw_open_revs = request.query.get("open_revs")
    revs = (
        None
        if raw_open_revs in (None, "all")
        else rev_list(json_param(request.query, "open_revs"), "open_revs")
    )
    # ``open_revs=[]`` asks for no revision in particular: CouchDB answers a plain GET.
    if raw_open_revs is not None and revs != []:
        mixed = _accepts(request, "multipart/mixed")
        opts = _options(request, follows=mixed)
        if mixed:
            # CouchDB's multipart answer always carries the bodies (less atts_since's): its
            # replicator asks without attachments=true and fails on a stub.
            opts = replace(opts, attachments=True)
        results = await storage.read(reads.open_revs, db, doc_id, revs, opts)
        if mixed:
            boundary = multipart.new_boundary()
            return web.Response(
                body=multipart.encode_mixed(results, boundary),
                headers={"Content-Type": f'multipart/mixed; boundary="{boundary}"'},
            )
        return json_response(
            [{"ok": found.doc} if found else {"missing": rev} for rev, found in results]
        )
    related = _accepts(request, "multipart/related")
    opts = _options(request, follows=related)
    rendered = await storage.read(reads.open_doc, db, doc_id, rev_param(request.query), opts)
    etag = {"ETag": f'"{rendered.doc["_rev"]}"'}
    if related and rendered.parts:
        boundary = multipart.new_boundary()
        return web.Response(
            body=multipart.encode_related(rendered, boundary),
            headers={"Content-Type": f'multipart/related; boundary="{boundary}"', **etag},
        )
    return json_response(rendered.doc, headers=etag)


async def _read_edit_body(request: web.Request) -> tuple[Any, dict[str, bytes]]:
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith("multipart/related;"):  # CouchDB's own test, to the letter
        raw = await request.read()
        return multipart.related_document(raw, multipart.boundary_of(content_type))
    return await json_body(request), {}


async def _put(request: web.Request, db: str, doc_id: str) -> web.StreamResponse:
    body, follows = await _read_edit_body(request)
    new_edits = request.query.get("new_edits") != "false"  # CouchDB: only "false" is false
    edit = parse_edit(body, new_edits=new_edits, doc_id=doc_id, rev=rev_param(request.query))
    edit.follows = follows
    written = await _write_one(request, db, edit, new_edits=new_edits)
    # CouchDB answers a PUT that deletes (``"_deleted": true``) as it answers a DELETE.
    return _written(written, status=200 if edit.deleted else 201)


async def post_document(request: web.Request, db: str) -> web.StreamResponse:
    """``POST /db``: a new document, with a generated id unless it names one."""
    body = await json_body(request)
    if isinstance(body, dict) and "_id" not in body:
        body = {"_id": uuid.uuid4().hex, **body}
    edit = parse_edit(body, new_edits=True)
    written = await _write_one(request, db, edit, new_edits=True)
    return _written(written, status=201)


async def _delete(request: web.Request, db: str, doc_id: str) -> web.StreamResponse:
    storage = request.app[STATE].storage
    # CouchDB opens the document before it reads the revision: a missing one is 404 "missing"
    # and a deleted one 404 "deleted", whatever revision is named.
    await storage.read(reads.open_doc, db, doc_id, None, reads.DocOptions())
    rev = rev_param(request.query, request)
    if rev is None:
        raise Conflict()
    edit = Edit(doc_id, rev, None, True, {}, None)
    written = await _write_one(request, db, edit, new_edits=True)
    return _written(written, status=200)


async def _write_one(
    request: web.Request, db: str, edit: Edit, *, new_edits: bool
) -> engine.Written:
    state = request.app[STATE]
    (result,) = await state.storage.write(engine.update_docs, db, [edit], new_edits=new_edits)
    state.hub.notify(db)
    if isinstance(result, CouchError):
        raise result
    return result


def _written(written: engine.Written, *, status: int) -> web.Response:
    return json_response(
        {"ok": True, "id": written.id, "rev": written.rev},
        status=status,
        headers={"ETag": f'"{written.rev}"'},
    )


# -- _local ------------------------------------------------------------------------------------


async def _local(request: web.Request, db: str, doc_id: str) -> web.StreamResponse:
    state = request.app[STATE]
    if request.method in ("GET", "HEAD"):
        revs = option(request.query, "revs")
        return json_response(await state.storage.read(reads.get_local, db, doc_id, revs))
    if request.method == "PUT":
        body = await json_body(request)
        edit = parse_edit(body, new_edits=True, doc_id=doc_id, rev=request.query.get("rev"))
        rev = await state.storage.write(engine.put_local_doc, db, edit)
        status = 200 if edit.deleted else 201
        return json_response({"ok": True, "id": doc_id, "rev": rev}, status=status)
    if request.method == "DELETE":
        asked = request.query.get("rev") or request.headers.get("If-Match", "").strip('"') or None
        rev = await state.storage.write(engine.delete_local, db, doc_id, asked)
        return json_response({"ok": True, "id": doc_id, "rev": rev})
    raise MethodNotAllowed(("DELETE", "GET", "HEAD", "PUT"))


# -- attachments ---------------------------------------------------------------------------


async def _attachment(request: web.Request, db: str, doc_id: str, att: str) -> web.StreamResponse:
    state = request.app[STATE]
    rev = rev_param(request.query, request if request.method != "GET" else None)
    if request.method in ("GET", "HEAD"):
        meta, data = await state.storage.read(reads.get_attachment, db, doc_id, att, rev)
        md5 = meta["digest"].removeprefix("md5-")
        headers = {"ETag": f'"{md5}"', "Content-MD5": md5, "Accept-Ranges": "none"}
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return web.Response(headers={**headers, "Content-Type": meta["content_type"]})
        return web.Response(body=data, headers={**headers, "Content-Type": meta["content_type"]})
    if request.method in ("PUT", "DELETE"):
        check_attachment_name(att)
    if request.method == "PUT":
        data = await request.read()
        content_type = request.headers.get("Content-Type", "application/octet-stream")
        written = await state.storage.write(
            engine.edit_attachment, db, doc_id, att, rev, (content_type, data)
        )
    elif request.method == "DELETE":
        written = await state.storage.write(engine.edit_attachment, db, doc_id, att, rev, None)
    else:
        raise MethodNotAllowed(("DELETE", "GET", "HEAD", "PUT"))
    state.hub.notify(db)
    return _written(written, status=201 if request.method == "PUT" else 200)


# -- bulk endpoints --------------------------------------------------------------------------


async def _bulk_docs(request: web.Request, db: str) -> web.StreamResponse:
    _allow(request, "POST")
    body = await json_object(request)
    if "docs" not in body:
        raise BadRequest("POST body must include `docs` parameter.")
    docs = body["docs"]
    if not isinstance(docs, list):
        raise BadRequest("`docs` parameter must be an array.")
    new_edits = body.get("new_edits", True)
    if not isinstance(new_edits, bool):
        raise BadRequest("`new_edits` parameter must be a boolean.")
    edits: list[Edit] = []
    for doc in docs:
        if isinstance(doc, dict) and "_id" not in doc:
            doc = {"_id": uuid.uuid4().hex, **doc}
        # CouchDB parses every document before writing any: one invalid one refuses them all.
        edits.append(parse_edit(doc, new_edits=new_edits))
    state = request.app[STATE]
    results = await state.storage.write(engine.update_docs, db, edits, new_edits=new_edits)
    state.hub.notify(db)
    answer: list[dict[str, Any]] = []
    for edit, result in zip(edits, results, strict=True):
        if isinstance(result, CouchError):
            answer.append({"id": edit.id, "error": result.error, "reason": result.reason})
        elif new_edits:
            answer.append({"ok": True, "id": result.id, "rev": result.rev})
    return json_response(answer, status=201)


async def _bulk_get(request: web.Request, db: str) -> web.StreamResponse:
    _allow(request, "POST")
    body = await json_object(request)
    docs = body.get("docs")
    if not isinstance(docs, list):
        raise BadRequest("Missing JSON list of 'docs'.")
    opts = reads.DocOptions(
        revs=option(request.query, "revs"),
        attachments=option(request.query, "attachments"),
        latest=option(request.query, "latest"),
    )
    results = await request.app[STATE].storage.read(reads.bulk_get, db, docs, opts)
    return json_response({"results": results})


async def _revs_diff(request: web.Request, db: str) -> web.StreamResponse:
    _allow(request, "POST")
    body = await json_object(request)
    return json_response(await request.app[STATE].storage.read(reads.revs_diff, db, body))


def _allow(request: web.Request, *methods: str) -> None:
    if request.method not in methods:
        raise MethodNotAllowed(methods)


DB_ENDPOINTS: dict[str, Callable[[web.Request, str], Awaitable[web.StreamResponse]]] = {
    "_bulk_docs": _bulk_docs,
    "_bulk_get": _bulk_get,
    "_revs_diff": _revs_diff,
    **all_docs.ENDPOINTS,
}
