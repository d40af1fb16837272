"""The streaming replication proxy: ``/db/<app>/...`` to the user's own upstream database.

Reads stream chunk by chunk through one shared session; live feeds have no read timeout and end
when the client leaves (the handler is cancelled and the upstream request with it) or when their
device is revoked. Writes the policy must read are read up to a cap (of a multipart document PUT,
only its JSON part: attachments stream); everything else streams.
Once a response has started nothing can become a JSON error, so every refusal happens before.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import hdrs, web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from gateway import keys
from gateway.accounts.lifecycle import provision_app
from gateway.auth.identity import authenticate
from gateway.auth.records import Device
from gateway.errors import (
    BadRequest,
    FileExists,
    Forbidden,
    NotFound,
    TooLarge,
    TooManyRequests,
    UnsupportedMediaType,
    UpstreamUnavailable,
)
from gateway.limits import quotas
from gateway.ops import metrics
from gateway.replication import (
    changes_filter,
    changes_hub,
    multipart,
    paths,
    policy,
    request_shapes,
    upstream_errors,
)
from gateway.replication.paths import Kind, Target
from gateway.shares import SHARES
from gateway.upstream.backend import member_name
from gateway.upstream.member_auth import member_headers
from gateway.web.bodies import content_coding, parse_json, read_capped, read_checked_json

log = logging.getLogger(__name__)

PREFIX = "/db"
ONE_SHOT_READ_TIMEOUT_S = 300
LOCAL_DOCS_PER_APP = 256
"""Checkpoints per app database: one per replication peer and direction is what clients make."""
LIVE_FEEDS = {"longpoll", "continuous", "eventsource"}
EMPTY_OK = {"_ensure_full_commit"}  # the one POST endpoint CouchDB runs without a body

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
DROP_UPSTREAM = HOP_BY_HOP | {
    "host",
    "authorization",
    "cookie",
    "accept-encoding",
    "expect",
    "origin",
    "referer",
}
# Location names the upstream's own URL (host, database u<uid>-<app>): nothing for clients.
DROP_DOWNSTREAM = HOP_BY_HOP | {
    "set-cookie",
    "server",
    "x-powered-by",
    "www-authenticate",
    "location",
    "content-location",
}

Body = bytes | AsyncIterable[bytes] | None
"""What goes upstream instead of the client's stream: bytes read whole (they get their own
Content-Length), or the client's body replayed from what was already read."""


def _connection_listed(headers: CIMultiDictProxy[str]) -> set[str]:
    listed: set[str] = set()
    for value in headers.getall(hdrs.CONNECTION, []):
        listed.update(token.strip().lower() for token in value.split(","))
    return listed


def _without(headers: CIMultiDictProxy[str], drop: frozenset[str], prefix: str) -> CIMultiDict[str]:
    drop = drop | _connection_listed(headers)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower not in drop and not lower.startswith(prefix):
            out.add(name, value)
    return out


def upstream_headers(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The client's headers minus credentials, hop-by-hop headers and anything CouchDB would
    take as an identity (``X-Auth-CouchDB-*``)."""
    return _without(headers, DROP_UPSTREAM, "x-auth-couchdb")


def downstream_headers(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The upstream's headers minus cookies, server banner, Basic challenges and its own CORS
    (couchgate answers CORS itself)."""
    return _without(headers, DROP_DOWNSTREAM, "access-control-")


def is_live(target: Target) -> bool:
    return target.is_live_feed_candidate and target.feed in LIVE_FEEDS


def client_gone(request: web.Request) -> bool:
    """Whether the client hung up (its connection is closed or closing)."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def handle(request: web.Request) -> web.StreamResponse:
    """Every request under ``/db``; a client that hung up ends it as cancelled.

    A runner that cancels handlers (``couchgate serve``) ends such a request so already; under
    one that does not (aiohttp's default, gunicorn's worker) the handler finds out when it next
    reads or writes, as a connection error that is not the upstream's. Ending it the same way
    keeps it out of the warnings and counts it as 499 (client closed), not 503.
    """
    try:
        return await _handle(request)
    except (ConnectionError, aiohttp.ClientError, UpstreamUnavailable):
        if client_gone(request):
            raise asyncio.CancelledError from None
        raise


async def _handle(request: web.Request) -> web.StreamResponse:
    """Classify, authenticate, authorize, then forward."""
    raw_path = request.raw_path.partition("?")[0]
    target = paths.classify(request.method, raw_path[len(PREFIX) :])
    request[keys.ROUTE_CLASS] = target.route_class
    target = paths.with_query(target, request.raw_path.partition("?")[2], request.method)
    content_coding(request)  # none taken: 415 (bodies.py)
    device = await authenticate(request)

    if target.kind is Kind.SERVER:
        uuid = request.app[keys.AUTH_KEYS].server_uuid(device.uid)
        return web.json_response(
            {"couchdb": "Welcome", "uuid": uuid, "vendor": {"name": "couchgate"}}
        )
    if not paths.app_enabled(request.app[keys.SETTINGS].apps, target.app):
        raise Forbidden(f"the app {target.app!r} is not enabled on this server")
    if target.kind is Kind.LOCAL and (request.content_length or 0) > policy.LOCAL_DOC_LIMIT:
        raise TooLarge(f"a _local document may hold at most {policy.LOCAL_DOC_LIMIT} bytes")
    await quotas.check_quota(request, device, target)

    if target.kind is Kind.DB and request.method == "PUT":
        return await _create_db(request, device, target.app)
    if target.kind is Kind.DB and request.method == "DELETE":
        return await _delete_db(request, device, target.app)
    if target.kind is Kind.DB and request.method == "POST":
        return await _post_doc(request, device, target)
    if target.kind is Kind.DB and request.method == "GET":
        return await _db_info(request, device, target)
    if target.kind is Kind.ENDPOINT and target.endpoint == "_bulk_docs":
        return await _bulk_docs(request, device, target)
    if target.kind is Kind.ENDPOINT and target.endpoint == "_changes" and request.method == "POST":
        return await _post_changes(request, device, target)
    if target.kind is Kind.DOC and request.method == "PUT":
        return await _put_doc(request, device, target)
    if target.kind is Kind.LOCAL and request.method == "PUT":
        return await _put_local(request, device, target)
    if target.kind is Kind.LOCAL and request.method == "DELETE":
        response = await forward(request, device, target)
        if response.status < 300:
            await request.app[keys.IDENTITIES].forget_local_doc(
                device.uid, target.app, target.doc_id
            )
        return response
    if target.kind is Kind.ATTACHMENT and request.method == "PUT" and _sealed_only(request, target):
        raise Forbidden(ATTACHMENT_PUT_REFUSED)
    if target.kind is Kind.ENDPOINT and request.method == "POST":
        limit, empty_ok = request.app[keys.SETTINGS].max_request_size, target.endpoint in EMPTY_OK
        body, value = await read_checked_json(request, limit, empty_ok=empty_ok)
        answer = request_shapes.check(target.endpoint, value)
        if answer is not None:
            return web.json_response(answer)
        return await forward(request, device, target, body=body)
    return await forward(request, device, target)


ATTACHMENT_PUT_REFUSED = "an encrypted app writes attachments sealed, inside their document"


def _sealed_only(request: web.Request, target: Target) -> bool:
    """Whether the app's documents must be sealed (encryption = required, the default)."""
    return not paths.app_enabled(request.app[keys.SETTINGS].plaintext_apps, target.app)


async def _put_local(request: web.Request, device: Device, target: Target) -> web.StreamResponse:
    """A checkpoint: capped, held to a checkpoint's shape in an encrypted app, and counted."""
    if "rev" in request.query:
        policy.check_local_rev(request.query["rev"])
    body = await read_capped(request, policy.LOCAL_DOC_LIMIT)
    doc = parse_json(body)
    policy.check_doc(target.doc_id, doc, encryption_required=_sealed_only(request, target))
    await _admit_locals(request, device, target, {target.doc_id: len(body)})
    return await forward(request, device, target, body=body)


async def _admit_locals(
    request: web.Request, device: Device, target: Target, sizes: dict[str, int]
) -> None:
    if sizes:
        await request.app[keys.IDENTITIES].admit_local_docs(
            device.uid, target.app, sizes, LOCAL_DOCS_PER_APP
        )


async def _db_info(request: web.Request, device: Device, target: Target) -> web.Response:
    """The database's info with the name the client knows it by: the app, not ``u<uid>-<app>``."""
    answer = await _db_info_once(request, device, target)
    if answer.status == 403 and await _restore_membership(request, device, target.app):
        answer = await _db_info_once(request, device, target)
    return answer


async def _db_info_once(request: web.Request, device: Device, target: Target) -> web.Response:
    async with _UpstreamCall(request, device, target, None, live=False) as up:
        if up.status >= 400:
            return await _upstream_error(up, device, target)
        answer = await up.read()
        info = parse_json(answer) if up.status == 200 else None
        if not isinstance(info, dict):
            return _response_from(up, answer)
        info["db_name"] = target.app
        headers = downstream_headers(up.headers)
        for name in (hdrs.CONTENT_LENGTH, hdrs.CONTENT_TYPE):
            headers.popall(name, None)
        return web.json_response(info, status=up.status, headers=headers)


async def _post_doc(request: web.Request, device: Device, target: Target) -> web.StreamResponse:
    """``POST /db/<app>``: a document whose id the upstream makes (or its own ``_id``), held to
    exactly what a PUT of it would be: JSON only, design documents, encryption, caps, quotas."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")
    body = await read_capped(request, request.app[keys.SETTINGS].max_request_size)
    doc = parse_json(body)
    doc_id = policy.doc_id_of(doc)
    if isinstance(doc, dict) and "_id" in doc and not isinstance(doc["_id"], str):
        raise BadRequest("Document id must be a string")
    policy.check_doc(doc_id, doc, encryption_required=_sealed_only(request, target))
    if doc_id.startswith(policy.LOCAL_PREFIX):
        if len(body) > policy.LOCAL_DOC_LIMIT:
            raise TooLarge(f"a _local document may hold at most {policy.LOCAL_DOC_LIMIT} bytes")
        await _admit_locals(request, device, target, {doc_id: len(body)})
    # To the database itself: pouchdb-server takes a POST to "/db/" for something else.
    return await forward(request, device, dataclasses.replace(target, raw_rest=""), body=body)


async def _put_doc(request: web.Request, device: Device, target: Target) -> web.StreamResponse:
    """Check the document, then forward it; a multipart body only once all of it is checked.

    Only the two forms CouchDB knows, recognised as CouchDB recognises them (the raw header
    starting ``multipart/related;``, else JSON): any other spelling could be read one way here
    and another upstream, so it is refused.
    """
    limit = request.app[keys.SETTINGS].max_request_size
    sealed_only = _sealed_only(request, target)
    if sealed_only and any(
        not policy.is_revision(value) for value in request.query.getall("rev", [])
    ):
        raise Forbidden(policy.BAD_REVISION)
    raw_type = request.headers.get(hdrs.CONTENT_TYPE, "")
    if raw_type.startswith("multipart/related;"):
        boundary = multipart.boundary_of(request.headers[hdrs.CONTENT_TYPE])
        part = await multipart.read_first_part(request.content, boundary, limit)
        document = parse_json(part.document)
        policy.check_doc(target.doc_id, document, encryption_required=sealed_only, multipart=True)
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
    policy.check_doc(target.doc_id, parse_json(body), encryption_required=sealed_only)
    return await forward(request, device, target, body=body)


async def _post_changes(request: web.Request, device: Device, target: Target) -> web.StreamResponse:
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


async def _create_db(request: web.Request, device: Device, app: str) -> web.Response:
    """Record the app first (the record's revision enforces the apps-per-user limit across
    replicas), then create its database; a creation that fails gives the place back.

    The steps run to their end even if the client hangs up: cut between the database's creation
    and its ``_security``, CouchDB would keep the database admin-only, closed to its user.
    """
    work = _provision(request, device, app)
    if not await request.app[keys.BACKGROUND].finish(work, "database creation"):
        raise FileExists()
    return web.json_response({"ok": True}, status=201)


async def _provision(request: web.Request, device: Device, app: str) -> bool:
    identities, backend = request.app[keys.IDENTITIES], request.app[keys.BACKEND]
    most = request.app[keys.SETTINGS].apps_per_user
    return (await provision_app(identities, backend, device.uid, app, most))[1]


async def _restore_membership(request: web.Request, device: Device, app: str) -> bool:
    """After the upstream refused the user their own database (403): if their account lists the
    app, make them its member again and say so.

    Only a database whose ``_security`` was never written (a gateway stopped between creating
    it and writing that) refuses its user, and every replicator asks for the database's info
    before anything else, where it would fail for good without this. In admin mode the
    upstream never refuses the gateway, so nothing is asked.
    """
    if request.app[keys.SETTINGS].upstream_auth == "admin":
        return False
    identities, backend = request.app[keys.IDENTITIES], request.app[keys.BACKEND]
    user = await identities.user(device.uid)
    if user is None or app not in user.apps:
        return False
    async with identities.app_changes.hold(f"{device.uid}/{app}"):
        restored = await backend.ensure_member(device.uid, app)
    if restored:
        log.warning("restored the membership of a database whose _security was never written")
    return restored


async def _delete_db(request: web.Request, device: Device, app: str) -> web.Response:
    identities = request.app[keys.IDENTITIES]
    async with identities.app_changes.hold(f"{device.uid}/{app}"):
        deleted = await request.app[keys.BACKEND].delete_user_db(device.uid, app)
        await identities.remove_app(device.uid, app)
        await request.app[SHARES].delete_where(device.uid, [app])  # after: see shares/routes
    if not deleted:
        raise NotFound("Database does not exist.")
    return web.json_response({"ok": True})


async def _bulk_docs(request: web.Request, device: Device, target: Target) -> web.StreamResponse:
    raw = await read_capped(request, request.app[keys.SETTINGS].max_request_size)
    body = parse_json(raw)
    if not isinstance(body, dict) or not isinstance(body.get("docs"), list):
        raise BadRequest("POST body must include `docs` parameter.")
    request_shapes.check_bulk_docs(body)
    docs: list[Any] = body["docs"]
    kept, refused = policy.split_bulk(docs, encryption_required=_sealed_only(request, target))
    if past := await quotas.bulk_refusals(request, device, target, docs, refused):
        refused = {**refused, **past}
        kept = [doc for i, doc in enumerate(docs) if i not in refused]
    await _admit_locals(request, device, target, policy.local_sizes(kept))
    if not refused:
        return await forward(request, device, target, body=raw)
    if not kept:
        return web.json_response(policy.merge_bulk_results(docs, refused, []), status=201)
    payload = json.dumps({**body, "docs": kept}).encode()
    async with _UpstreamCall(request, device, target, payload, live=False) as up:
        if up.status >= 400:
            return await _upstream_error(up, device, target)
        answer = await up.read()
        if up.status >= 300:
            return _response_from(up, answer)
        results = parse_json(answer)
        merged = policy.merge_bulk_results(
            docs, refused, results if isinstance(results, list) else []
        )
        return web.json_response(merged, status=up.status)


def _response_from(up: aiohttp.ClientResponse, body: bytes) -> web.Response:
    headers = downstream_headers(up.headers)
    headers.popall(hdrs.CONTENT_LENGTH, None)
    return web.Response(status=up.status, body=body, headers=headers)


def _upstream_url(request: web.Request, device: Device, target: Target) -> URL:
    base = request.app[keys.BACKEND].db_url(device.uid, target.app)
    query = f"?{target.query}" if target.query else ""
    return URL(str(base) + target.raw_rest + query, encoded=True)


class _UpstreamCall:
    """``async with`` one upstream request; connection failures become a 503 before any byte
    has gone to the client, and an upstream that refuses couchgate itself is an outage, not the
    user's fault."""

    def __init__(
        self, request: web.Request, device: Device, target: Target, body: Body, live: bool
    ) -> None:
        self._request, self._device, self._target = request, device, target
        self._body, self._live = body, live
        self._response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        request = self._request
        app = request.app
        headers = upstream_headers(request.headers)
        headers.update(
            member_headers(
                app[keys.BACKEND].settings, member_name(self._device.uid), int(time.time())
            )
        )
        data: Any = None
        if isinstance(self._body, bytes):
            # A file-like payload is written in chunks; one large bytes write would hold the loop.
            data = io.BytesIO(self._body)
            headers[hdrs.CONTENT_LENGTH] = str(len(self._body))
        elif self._body is not None:
            data = self._body  # the client's body, replayed: its Content-Length still holds
        elif request.body_exists:
            data = request.content
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=10, sock_read=None if self._live else ONE_SHOT_READ_TIMEOUT_S
        )
        try:
            self._response = await app[keys.BACKEND].http.request(
                request.method,
                _upstream_url(request, self._device, self._target),
                headers=headers,
                data=data,
                timeout=timeout,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            if not client_gone(request):  # else the client's body failed, not the upstream
                log.warning("upstream request failed: %s", type(exc).__name__)
            raise UpstreamUnavailable() from None
        if self._response.status == 401:
            self._response.release()
            log.error(
                "the upstream refused couchgate's credentials (upstream_auth=%s)",
                app[keys.SETTINGS].upstream_auth,
            )
            raise UpstreamUnavailable("the database refused couchgate's credentials")
        return self._response

    async def __aexit__(self, *exc: object) -> None:
        if self._response is not None:
            self._response.release()


async def forward(
    request: web.Request, device: Device, target: Target, *, body: Body = None
) -> web.StreamResponse:
    """Forward one request and stream the answer back as it arrives."""
    if not is_live(target):
        async with _UpstreamCall(request, device, target, body, live=False) as up:
            if up.status >= 400:
                return await _upstream_error(up, device, target)
            response = await _start_response(request, up)
            try:
                async for chunk in _timed(up.content.iter_any()):
                    await response.write(chunk)
            except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                return _cut_off(request, response, exc)
            await response.write_eof()
            return response
    request[metrics.LIVE] = True
    # A live feed is registered before it is opened, so a revocation that lands while the
    # upstream is still answering ends it too.
    feeds, most = request.app[keys.FEEDS], request.app[keys.SETTINGS].feeds_per_device
    if most and feeds.open_for(device.key) >= most:
        raise TooManyRequests(f"more than {most} live feeds open for this device", retry_after=10)
    with feeds.open(device.key) as stop:
        hub = request.app.get(keys.CHANGES_HUB)
        if changes_hub.multiplexable(target, request.method, hub):
            assert hub is not None
            if request.method == "POST" and not isinstance(body, bytes):
                body = await read_capped(request, changes_hub.POST_BODY_LIMIT)
            held = body if isinstance(body, bytes) else None
            return await hub.serve(request, device.uid, target, held, stop)
        async with _UpstreamCall(request, device, target, body, live=True) as up:
            if up.status >= 400:
                return await _upstream_error(up, device, target)
            response = await _start_response(request, up)
            longpoll = target.feed == "longpoll"
            try:
                sent = await _pump_until(up, response, stop, keep=longpoll)
            except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                return _cut_off(request, response, exc)
            if stop.is_set() and longpoll:
                ending = None if sent is None else longpoll_ending(sent, target.since)
                if ending is None:
                    return _cut_off(request, response, None)
                await response.write(ending)
            await response.write_eof()
            return response


async def _timed(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The upstream's body chunk by chunk, the waits for it counted as the upstream's time."""
    while True:
        started = time.monotonic()
        try:
            chunk = await anext(chunks)
        except StopAsyncIteration:
            metrics.note_upstream_wait(time.monotonic() - started)
            return
        metrics.note_upstream_wait(time.monotonic() - started)
        yield chunk


async def _upstream_error(
    up: aiohttp.ClientResponse, device: Device, target: Target
) -> web.Response:
    """An upstream error answer, retold in CouchDB's shape without internal names or traces."""
    body = bytearray()
    try:
        while len(body) < upstream_errors.ERROR_BODY_LIMIT:
            chunk = await up.content.read(upstream_errors.ERROR_BODY_LIMIT - len(body))
            if not chunk:
                break
            body += chunk
    except (aiohttp.ClientError, TimeoutError):
        pass  # what arrived is told as well as it can be; a cut JSON becomes its status's error
    answer = upstream_errors.client_error(up.status, bytes(body), device.uid, target.app)
    if hdrs.RETRY_AFTER in up.headers:
        answer.headers[hdrs.RETRY_AFTER] = up.headers[hdrs.RETRY_AFTER]
    return answer


async def _start_response(request: web.Request, up: aiohttp.ClientResponse) -> web.StreamResponse:
    response = web.StreamResponse(status=up.status, reason=up.reason)
    response.headers.extend(downstream_headers(up.headers))
    await response.prepare(request)
    return response


def _cut_off(
    request: web.Request, response: web.StreamResponse, failure: BaseException | None
) -> web.StreamResponse:
    """Too late for a JSON error: cut the client off so it cannot mistake a truncated body for
    a whole one, and let it retry."""
    if client_gone(request):
        raise asyncio.CancelledError  # the client left: it was the write that failed
    if failure is not None:
        log.warning("upstream failed mid-response: %s", type(failure).__name__)
    if request.transport is not None:
        request.transport.close()
    return response


LONGPOLL_KEEP = 1024 * 1024


async def _pump_until(
    up: aiohttp.ClientResponse, response: web.StreamResponse, stop: asyncio.Event, keep: bool
) -> bytes | None:
    """Copy a live feed chunk by chunk (heartbeats included) until it ends or ``stop`` is set.

    With ``keep``, returns what was sent (while that stays small), so a long poll cut short can
    still be completed into valid JSON; else None.
    """
    stopped = asyncio.ensure_future(stop.wait())
    read: asyncio.Future[bytes] | None = None
    sent = bytearray() if keep else None
    try:
        while True:
            read = asyncio.ensure_future(up.content.readany())
            await asyncio.wait({read, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not read.done():
                break
            chunk = read.result()
            if not chunk:
                break
            if sent is not None:
                sent = sent + chunk if len(sent) + len(chunk) <= LONGPOLL_KEEP else None
            await response.write(chunk)
    finally:
        stopped.cancel()
        if read is not None and not read.done():
            read.cancel()
    return None if sent is None else bytes(sent)


def longpoll_ending(sent: bytes, since: str | None) -> bytes | None:
    """The bytes that make a long-poll answer cut off after ``sent`` whole again, or None when it
    was cut inside a row. CouchDB (and pouchdb-server) open the body with ``{"results":[`` at
    once and write whole rows, so a feed ended between rows closes as a valid, shorter answer: the
    client asks again from the last row it got, and is told then why it may not."""
    try:
        text = sent.decode()
        rows = json.loads(text + "]}")["results"] if text.strip() else None
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None
    last_seq: object = since if since not in (None, "") else 0
    if rows:
        last_seq = rows[-1].get("seq", last_seq) if isinstance(rows[-1], dict) else last_seq
    elif isinstance(last_seq, str) and last_seq.isdigit():
        last_seq = int(last_seq)
    tail = '],"last_seq":' + json.dumps(last_seq) + "}\n"
    return ('{"results":[' + tail).encode() if rows is None else tail.encode()
