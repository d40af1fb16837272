"""Through couchgate, ``/db/<app>`` answers as the database behind it does (issue 22).

The request sequences of the store's differential test (:mod:`tests.store.differential`, which
says what is normalized) go to one app through couchgate and, as the upstream's admin, straight
to the upstream database of a second app couchgate provisioned alike (same shards, same design
document), on Apache CouchDB, pouchdb-server and the embedded store. Every answer must be equal,
but the database's name in its info. So a proxy change that alters an answer is caught on every
upstream; that the embedded store answers as CouchDB does is tests/store/test_differential.py's
part.

``COUCHGATE_GATEWAY_DIFF_SEQUENCES`` sets the sequences per upstream (default 25).
<<<<<<< HEAD

pouchdb-server's own differences from CouchDB, which would otherwise kill it or hang the test,
are taken out the same way on both sides (:func:`for_pouchdb_server`, :func:`feeds_bounded`;
docs/couchdb-differences.md lists them too):

- ``latest=true`` naming a revision the document does not have (``_bulk_get``, ``open_revs``)
  ends the pouchdb-server process (an uncaught exception in pouchdb-merge): left out.
- A ``_selector`` filter's selector is read from the query string only; from a POST body it is
  ignored, and a live feed then looks for a design document ``_design/_selector`` and ends the
  process. couchgate moves the selector into the query for pouchdb-server
  (``gateway.replication.paths.with_selector``); the straight request carries it there too.
- Live feeds ignore ``timeout`` (a long poll with nothing to send, and every continuous feed,
  never end), a continuous feed ignores ``limit`` and sends no closing ``last_seq`` line, and
  the headers come with the first line. So a long poll or continuous feed asks for a 100 ms
  heartbeat and is read only as far as the same request as ``feed=normal`` (asked first, on the
  same side) finds rows: a continuous feed that many lines, a long poll with rows to its end,
  a feed with no row by its status alone.
- ``feed=eventsource`` is answered as a normal feed (JSON): read as JSON.
- Bodies of a shape CouchDB refuses with a 400 (``gateway.replication.request_shapes``: a
  ``keys`` member that is not a list, a ``_revs_diff`` of non-strings, ...) are answered by
  pouchdb-server its own way, and by couchgate, on every upstream, with CouchDB's 400 before
  anything is forwarded: a deliberate refusal, left out of the pouchdb-server sequences.

Found by this test and fixed in gateway/: CouchDB 3.5.2 ends a bounded eventsource feed twice
(a second chunk after the last), which couchgate's upstream client took for a broken answer (a
503); couchgate now asks for eventsource feeds in HTTP/1.0 (tests/integration/
test_eventsource_through_gateway.py).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from urllib.parse import parse_qsl, quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from gateway.errors import BadRequest
from gateway.replication import request_shapes
from tests.harness import Device, GatewayHarness
from tests.rawhttp import Answer
from tests.store.differential import SERVER_KEYS, Request, Send, raw_transport, sequences
from tests.store.test_differential import Tally, run_sequence
from tests.upstreams import Upstream

SEQUENCES = int(os.environ.get("COUCHGATE_GATEWAY_DIFF_SEQUENCES", "25"))
EXPLORE = os.environ.get("COUCHGATE_DIFF_EXPLORE") == "1"
"""CI runs the same sequences every time (derandomized: a CI failure is a change, not luck);
``COUCHGATE_DIFF_EXPLORE=1`` draws new ones, as a long run does."""
THROUGH_GATEWAY = settings(
    max_examples=SEQUENCES,
    deadline=None,
    database=None,
    derandomize=not EXPLORE,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
GATEWAY_KEYS = SERVER_KEYS | {"db_name"}
LIVE_FEEDS = ("longpoll", "continuous")
FEED_SHAPE = frozenset({"feed", "timeout", "heartbeat"})
HEARTBEAT_MS = 100
"""pouchdb-server sends a live feed's headers with its first line, and a feed with nothing to
send starts with its first heartbeat (6 s by default)."""


def refused_by_couchgate(request: Request) -> bool:
    """Whether couchgate answers ``request`` itself, with CouchDB's 400 for its body's shape."""
    endpoint = request.path.lstrip("/")
    if request.method != "POST" or request.raw_body is not None:
        return False
    try:
        request_shapes.check(endpoint, request.body)
    except BadRequest:
        return True
    return False


def for_pouchdb_server(request: Request) -> Request:
    """``request`` as it is compared on pouchdb-server (see the module docstring): without
    ``latest=true``, a ``_selector`` in the query as couchgate sends it there, a live feed with
    a short heartbeat, and an eventsource feed read as the JSON pouchdb-server answers."""
    query = tuple(param for param in request.query if param != ("latest", "true"))
    if ("filter", "_selector") in query and isinstance(request.body, dict):
        query += (("selector", json.dumps(request.body.get("selector"), separators=(",", ":"))),)
    read = "json" if ("feed", "eventsource") in query else request.read
    if any(("feed", feed) in query for feed in LIVE_FEEDS):
        query += (("heartbeat", str(HEARTBEAT_MS)),)
    return replace(request, query=query, read=read)


def feeds_bounded(base_url: str, headers: dict[str, str]) -> Send:
    """:func:`raw_transport`, but a live feed is read only as far as pouchdb-server will go:
    the rows the same request as ``feed=normal`` finds (asked first, on the same side), then
    the connection is closed; a feed with no row to send is compared by its status alone."""
    plain = raw_transport(base_url, headers)

    async def call(
        method: str, target: str, data: bytes | None, extra: dict[str, str]
    ) -> tuple[int, bytes]:
        path, _, query = target.partition("?")
        params = parse_qsl(query, keep_blank_values=True)
        feed = dict(params).get("feed")
        if path != "/_changes" or feed not in LIVE_FEEDS:
            return await plain(method, target, data, extra)
        normal = [(k, v) for k, v in params if k not in FEED_SHAPE]
        status, raw = await plain(method, _target(path, normal), data, extra)
        rows = len(json.loads(raw)["results"]) if status == 200 else 0

        def enough(answer: Answer) -> bool:
            if answer.status != 200:
                return False  # an error ends by itself
            if rows == 0:
                return True  # nothing to wait for: the status says it all
            if feed == "longpoll":
                return False  # a long poll with rows ends by itself
            return len(_lines(answer.body)) >= rows

        status, raw = await raw_transport(base_url, headers, enough)(method, target, data, extra)
        if status != 200:
            return status, raw
        if rows == 0:
            return status, b""
        if feed == "continuous":
            return status, b"\n".join(_lines(raw)[:rows])
        return status, raw

    return call


def _target(path: str, params: list[tuple[str, str]]) -> str:
    return path + ("?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params) if params else "")


def _lines(body: bytes) -> list[bytes]:
    """The whole, non-empty lines of a continuous feed (heartbeats are empty lines)."""
    return [line for line in body.split(b"\n")[:-1] if line.strip()]


@pytest.fixture
def reference(gateway: GatewayHarness, request: pytest.FixtureRequest) -> Upstream:
    """The upstream as its admin (couchgate on CouchDB may itself use JWTs)."""
    if gateway.upstream.kind == "embedded":
        return gateway.upstream
    up: Upstream = request.getfixturevalue(
        "pouchdb" if gateway.upstream.kind == "pouchdb-server" else "couchdb"
    )
    return up


@pytest.fixture
async def device(gateway: GatewayHarness) -> Device:
    return await gateway.new_device()


@pytest.fixture
async def tally(gateway: GatewayHarness) -> AsyncIterator[Tally]:
    counts = Tally()
    yield counts
    print(
        f"\nthrough couchgate on {gateway.upstream.kind}: {counts.sequences} sequences, "
        f"{counts.requests} requests compared, {counts.differences} differences"
    )


@THROUGH_GATEWAY
@given(sequence=sequences)
async def test_gateway_answers_as_its_upstream(
    gateway: GatewayHarness,
    device: Device,
    reference: Upstream,
    tally: Tally,
    sequence: list[Request],
) -> None:
    app, twin = (f"d{uuid.uuid4().hex[:12]}" for _ in range(2))
    for name in (app, twin):
        status, body = await gateway.call("PUT", f"/db/{name}", device=device)
        assert status == 201, body
    upstream_db = quote(gateway.upstream_db(device, twin), safe="")
    try:
        tally.sequences += 1
        transport: Callable[[str, dict[str, str]], Send] = raw_transport
        if gateway.upstream.kind == "pouchdb-server":
            sequence = [for_pouchdb_server(r) for r in sequence if not refused_by_couchgate(r)]
            transport = feeds_bounded
        straight = transport(f"{reference.url}/{upstream_db}", reference.admin_headers())
        through = transport(device.db_url(app), device.headers)
        label = f"couchgate on {gateway.upstream.kind}"
        await run_sequence(sequence, straight, through, tally, label, GATEWAY_KEYS)
    finally:
        for name in (app, twin):
            await gateway.call("DELETE", f"/db/{name}", device=device)
