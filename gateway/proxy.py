"""The streaming replication proxy: ``/db/<app>/...`` to the user's own upstream database.

Reads stream chunk by chunk through one shared session; live feeds have no read timeout and end
when the client leaves (the handler is cancelled and the upstream request with it) or when their
device is revoked. Writes the policy must read are read up to a cap (of a multipart document PUT,
only its JSON part: attachments stream); everything else streams.
Once a response has started nothing can become a JSON error, so every refusal happens before.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterable
from typing import Any

import aiohttp
from aiohttp import hdrs, web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from gateway import changes_hub, keys, multipart, paths, policy, quotas
from gateway.auth.identity import authenticate
from gateway.auth.records import Device
from gateway.backend import member_name
from gateway.bodies import parse_json, read_capped
from gateway.errors import (
    BadRequest,
    FileExists,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    UpstreamUnavailable,
)
from gateway.paths import Kind, Target
from gateway.shares import SHARES
from gateway.upstream_auth import member_headers

log = logging.getLogger(__name__)

PREFIX = "/db"
ONE_SHOT_READ_TIMEOUT_S = 300
LOCAL_DOC_LIMIT = 64 * 1024
LIVE_FEEDS = {"longpoll", "continuous", "eventsource"}

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


async def handle(request: web.Request) -> web.StreamResponse:
    """Every request under ``/db``: classify, authenticate, authorize, then forward."""
    raw_path = request.raw_path.partition("?")[0]
    target = paths.classify(request.method, raw_path[len(PREFIX) :])
    request[keys.ROUTE_CLASS] = target.route_class
    target = paths.with_query(target, request.raw_path.partition("?")[2])
    device = await authenticate(request)

    if target.kind is Kind.SERVER:
        uuid = request.app[keys.AUTH_KEYS].server_uuid(device.uid)
        return web.json_response(
            {"couchdb": "Welcome", "uuid": uuid, "vendor": {"name": "couchgate"}}
        )
    if not paths.app_enabled(request.app[keys.SETTINGS].apps, target.app):
        raise Forbidden(f"the app {target.app!r} is not enabled on this server")
    await quotas.check_quota(request, device, target)

    if target.kind is Kind.DB and request.method == "PUT":
        return await _create_db(request, device, target.app)
    if target.kind is Kind.DB and request.method == "DELETE":
        return await _delete_db(request, device, target.app)
    if target.kind is Kind.ENDPOINT and target.endpoint == "_bulk_docs":
        return await _bulk_docs(request, device, target)
    if target.kind is Kind.DOC and request.method == "PUT":
        return await _put_doc(request, device, target)
    if target.kind is Kind.LOCAL and request.method == "PUT":
        # Checkpoints are small and hold no user data; a cap keeps them from becoming a place
        # to keep data past the quota and the encryption policy.
        body = await read_capped(request, LOCAL_DOC_LIMIT)
        if not isinstance(parse_json(body), dict):
            raise BadRequest("Document must be a JSON object")
        return await forward(request, device, target, body=body)
    if target.kind is Kind.ATTACHMENT and request.method == "PUT" and _sealed_only(request, target):
        raise Forbidden(ATTACHMENT_PUT_REFUSED)
    return await forward(request, device, target)


ATTACHMENT_PUT_REFUSED = "an encrypted app writes attachments sealed, inside their document"


def _sealed_only(request: web.Request, target: Target) -> bool:
    """Whether the app's documents must be sealed (encryption = required, the default)."""
    return not paths.app_enabled(request.app[keys.SETTINGS].plaintext_apps, target.app)


async def _put_doc(request: web.Request, device: Device, target: Target) -> web.StreamResponse:
    """Check the document, then forward it; attachments in a multipart body stream past.

    Only the two forms CouchDB knows, recognised as CouchDB recognises them (the raw header
    starting ``multipart/related;``, else JSON): any other spelling could be read one way here
    and another upstream, so it is refused.
    """
    limit = request.app[keys.SETTINGS].max_request_size
    sealed_only = _sealed_only(request, target)
    raw_type = request.headers.get(hdrs.CONTENT_TYPE, "")
    if raw_type.startswith("multipart/related;"):
        boundary = multipart.boundary_of(request.headers[hdrs.CONTENT_TYPE])
        part = await multipart.read_first_part(request.content, boundary, limit)
        document = parse_json(part.document)
        policy.check_doc(target.doc_id, document, encryption_required=sealed_only)
        rest = multipart.replay(part.head, request.content)
        return await forward(request, device, target, body=rest)
    if request.content_type != "application/json" or raw_type.lower().startswith("multipart"):
        raise UnsupportedMediaType(
            "Content-Type must be application/json or multipart/related with a boundary"
        )
    body = await read_capped(request, limit)
    policy.check_doc(target.doc_id, parse_json(body), encryption_required=sealed_only)
    return await forward(request, device, target, body=body)


async def _create_db(request: web.Request, device: Device, app: str) -> web.Response:
    most = request.app[keys.SETTINGS].apps_per_user
    user = await request.app[keys.IDENTITIES].user(device.uid)
    if user is None:
        raise Unauthorized("invalid or revoked token")  # the account was removed
    if most and app not in user.apps and len(user.apps) >= most:
        raise Forbidden(f"app limit reached: an account may have {most} apps")
    created = await request.app[keys.BACKEND].create_user_db(device.uid, app)
    await request.app[keys.IDENTITIES].add_app(device.uid, app)
    if not created:
        raise FileExists()
    return web.json_response({"ok": True}, status=201)


async def _delete_db(request: web.Request, device: Device, app: str) -> web.Response:
    deleted = await request.app[keys.BACKEND].delete_user_db(device.uid, app)
    await request.app[SHARES].delete_where(device.uid, [app])
    await request.app[keys.IDENTITIES].remove_app(device.uid, app)
    if not deleted:
        raise NotFound("Database does not exist.")
    return web.json_response({"ok": True})


async def _bulk_docs(request: web.Request, device: Device, target: Target) -> web.StreamResponse:
    raw = await read_capped(request, request.app[keys.SETTINGS].max_request_size)
    body = parse_json(raw)
    if not isinstance(body, dict) or not isinstance(body.get("docs"), list):
        raise BadRequest("POST body must include `docs` parameter.")
    docs: list[Any] = body["docs"]
    kept, refused = policy.split_bulk(docs, encryption_required=_sealed_only(request, target))
    if not refused:
        return await forward(request, device, target, body=raw)
    if not kept:
        return web.json_response(policy.merge_bulk_results(docs, refused, []), status=201)
    payload = json.dumps({**body, "docs": kept}).encode()
    async with _UpstreamCall(request, device, target, payload, live=False) as up:
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
            response = await _start_response(request, up)
            try:
                async for chunk in up.content.iter_any():
                    await response.write(chunk)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return _cut_off(request, response, exc)
            await response.write_eof()
            return response
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
            response = await _start_response(request, up)
            longpoll = target.feed == "longpoll"
            try:
                sent = await _pump_until(up, response, stop, keep=longpoll)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return _cut_off(request, response, exc)
            if stop.is_set() and longpoll:
                ending = None if sent is None else longpoll_ending(sent, target.since)
                if ending is None:
                    return _cut_off(request, response, None)
                await response.write(ending)
            await response.write_eof()
            return response


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
