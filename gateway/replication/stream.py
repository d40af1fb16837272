"""Streaming to and from the user's upstream database: one request, its answer as it arrives.

Reads stream chunk by chunk through one shared session; live feeds have no read timeout and end
when the client leaves (the handler is cancelled and the upstream request with it) or when their
device is revoked. One ``async with`` (:class:`UpstreamCall`) owns each upstream response: before
the first byte a failure is a 503; after ``prepare()`` nothing can become a JSON error, and the
only move left is to close (:func:`_cut_off`).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import aiohttp
from aiohttp import hdrs, web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from gateway import keys
from gateway.auth.records.devices import Device
from gateway.errors import TooManyRequests, UpstreamUnavailable
from gateway.ops import metrics
from gateway.replication import changes_feed, upstream_errors
from gateway.replication.paths import Target
from gateway.upstream.backend import member_name
from gateway.upstream.member_auth import member_headers
from gateway.web.bodies import read_capped

log = logging.getLogger(__name__)

ONE_SHOT_READ_TIMEOUT_S = 300
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


def client_gone(request: web.Request) -> bool:
    """Whether the client hung up (its connection is closed or closing)."""
    transport = request.transport
    return transport is None or transport.is_closing()


def response_from(up: aiohttp.ClientResponse, body: bytes) -> web.Response:
    headers = downstream_headers(up.headers)
    headers.popall(hdrs.CONTENT_LENGTH, None)
    return web.Response(status=up.status, body=body, headers=headers)


def _upstream_url(request: web.Request, device: Device, target: Target) -> URL:
    base = request.app[keys.BACKEND].db_url(device.uid, target.app)
    query = f"?{target.query}" if target.query else ""
    return URL(str(base) + target.raw_rest + query, encoded=True)


class UpstreamCall:
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
        backend = app[keys.BACKEND]
        # CouchDB ends a bounded eventsource feed twice in HTTP/1.1: ask a configured upstream
        # for it in HTTP/1.0 (see Backend.http10), where it is relayed as CouchDB sends it. The
        # embedded store ends its feeds once.
        old_http = self._target.feed == "eventsource" and app[keys.SETTINGS].upstream_configured
        http = backend.http10 if old_http else backend.http
        try:
            self._response = await http.request(
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
        async with UpstreamCall(request, device, target, body, live=False) as up:
            if up.status >= 400:
                return await upstream_error(up, device, target)
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
        if changes_feed.multiplexable(target, request.method, hub):
            assert hub is not None
            if request.method == "POST" and not isinstance(body, bytes):
                body = await read_capped(request, changes_feed.POST_BODY_LIMIT)
            held = body if isinstance(body, bytes) else None
            return await changes_feed.serve(hub, request, device.uid, target, held, stop)
        async with UpstreamCall(request, device, target, body, live=True) as up:
            if up.status >= 400:
                return await upstream_error(up, device, target)
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


async def upstream_error(
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
