"""The replication proxy's front door: every request under ``/db``, checked, then dispatched.

Every request goes through the same steps, in this order, which is security-relevant: classify
the path against the allow-list (:mod:`paths`), refuse a compressed body, authenticate the
device, answer the server's welcome, refuse an app that is not enabled, cap a ``_local``
document's size, check the user's quota. Only then does :data:`ROUTES` pick the handler: read top
to bottom, the first row that matches the request serves it; a request no row matches streams
through as it is (:func:`stream.forward`). The handlers live by concern: the database's lifecycle
in :mod:`databases`, the checks on bodies in :mod:`writes`, the streaming in :mod:`stream`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from gateway import keys
from gateway.auth.identity import authenticate
from gateway.auth.records.devices import Device
from gateway.errors import Forbidden, TooLarge, UpstreamUnavailable
from gateway.limits import quotas
from gateway.replication import databases, paths, policy, writes
from gateway.replication.paths import Kind, Target
from gateway.replication.stream import client_gone, forward
from gateway.web.bodies import content_coding

PREFIX = "/db"

Handler = Callable[[web.Request, Device, Target], Awaitable[web.StreamResponse]]
ANY_METHOD: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Route:
    """One row of the dispatch table: the kind of target, the methods (:data:`ANY_METHOD`:
    whichever the allow-list let through), the endpoint for ``Kind.ENDPOINT`` rows that name
    one, and a further condition on the request, if any."""

    kind: Kind
    methods: frozenset[str]
    handler: Handler
    endpoint: str = ""
    when: Callable[[web.Request, Target], bool] | None = None

    def matches(self, request: web.Request, target: Target) -> bool:
        return (
            target.kind is self.kind
            and (not self.methods or request.method in self.methods)
            and (not self.endpoint or target.endpoint == self.endpoint)
            and (self.when is None or self.when(request, target))
        )


def _only(*methods: str) -> frozenset[str]:
    return frozenset(methods)


ROUTES: tuple[Route, ...] = (
    Route(Kind.DB, _only("PUT"), databases.create),
    Route(Kind.DB, _only("DELETE"), databases.delete),
    Route(Kind.DB, _only("POST"), writes.post_doc),
    Route(Kind.DB, _only("GET"), databases.info),
    Route(Kind.ENDPOINT, ANY_METHOD, writes.bulk_docs, endpoint="_bulk_docs"),
    Route(Kind.ENDPOINT, _only("POST"), writes.post_changes, endpoint="_changes"),
    Route(Kind.DOC, _only("PUT"), writes.put_doc),
    Route(Kind.LOCAL, _only("PUT"), writes.put_local),
    Route(Kind.LOCAL, _only("DELETE"), writes.delete_local),
    Route(Kind.ATTACHMENT, _only("PUT"), writes.refuse_attachment_put, when=writes.sealed_only),
    Route(Kind.ENDPOINT, _only("POST"), writes.post_endpoint),
)
"""Which handler serves a request that passed every check, first match wins; no match: it is
forwarded as it is (reads, ``HEAD``, deletes of documents and attachments, attachments of plain
apps)."""


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
    """Classify, authenticate, authorize, then dispatch."""
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

    for route in ROUTES:
        if route.matches(request, target):
            return await route.handler(request, device, target)
    return await forward(request, device, target)
