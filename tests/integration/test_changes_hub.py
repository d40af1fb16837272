"""Live feeds held by couchgate (``gateway/replication/changes_hub.py``, ``changes_feed.py``)
against a real Apache CouchDB and the embedded store: idle feeds cost no upstream request, one
read serves every feed of a database, the answers are the upstream's own, and a watch that drops
loses nothing.

The hub needs the upstream's ``_db_updates``; pouchdb-server has none, so there every feed is
forwarded and the feed tests of ``test_feeds.py``, ``test_limits.py``, ``test_shutdown.py`` and
``test_pouchdb_replication.py`` (which run against CouchDB too, held by the hub there) are the
twins of these.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import keys
from gateway.replication.changes_hub import ChangesHub, Wake
from tests.conftest import couchdb_settings
from tests.harness import Device, GatewayHarness, start_gateway, stop_gateway
from tests.upstreams import Upstream

pytestmark = pytest.mark.couchdb
ANSWER_S = 10.0  # far more than _db_updates takes (tens of ms with deploy/couchdb/local.ini)


async def _watching(gw: GatewayHarness) -> ChangesHub:
    hub = gw.app[keys.CHANGES_HUB]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30  # a wait for the watch, not a timing
    while not hub.watching:
        assert loop.time() < deadline, "the hub never started watching _db_updates"
        await asyncio.sleep(0.05)
    return hub


@pytest.fixture(params=["couchdb", "embedded"])
async def hub_gateway(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[GatewayHarness]:
    """A gateway whose hub watches the upstream: CouchDB (jwt mode), or the embedded store."""
    if request.param == "couchdb":
        couchdb: Upstream = request.getfixturevalue("couchdb")
        gw = await start_gateway(couchdb, feeds_per_device=0, **couchdb_settings(couchdb))
    else:
        gw = await start_gateway(None, feeds_per_device=0, data_dir=str(tmp_path / "embedded"))
    try:
        await _watching(gw)
        yield gw
    finally:
        await stop_gateway(gw)


async def _direct_changes(gw: GatewayHarness, device: Device, query: str) -> Any:
    """The same read straight from CouchDB, as its admin."""
    status, body = await gw.peek("GET", f"/{gw.upstream_db(device, 'notes')}/_changes?{query}")
    assert status == 200, body
    return body


async def test_idle_feeds_wait_without_upstream_requests_and_one_read_serves_them_all(
    hub_gateway: GatewayHarness,
) -> None:
    gw = hub_gateway
    hub = gw.app[keys.CHANGES_HUB]
    device = await gw.new_device()
    assert (await gw.call("PUT", "/db/notes/", device=device))[0] == 201
    assert (await gw.call("PUT", "/db/notes/first", device=device, json={"v": 0}))[0] == 201
    _, caught_up = await gw.call("GET", "/db/notes/_changes", device=device)
    since = caught_up["last_seq"]

    url = f"{gw.url}/db/notes/_changes?feed=longpoll&heartbeat=2000&since={since}"
    feeds = [asyncio.ensure_future(gw.session.get(url, headers=device.headers)) for _ in range(40)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while hub.waiting() < 40:
        assert loop.time() < deadline, f"only {hub.waiting()} feeds are held"
        await asyncio.sleep(0.05)
    before = hub.upstream_reads
    await asyncio.sleep(3)  # over a heartbeat: idle feeds ask the upstream nothing
    assert hub.upstream_reads == before

    assert (await gw.call("PUT", "/db/notes/second", device=device, json={"v": 1}))[0] == 201
    answers = [json.loads(await (await f).text()) for f in feeds]
    expected = await _direct_changes(gw, device, f"since={since}")
    assert all(answer == expected for answer in answers), (answers[0], expected)
    assert [row["id"] for row in expected["results"]] == ["second"]
    # One read for the change served all forty (two if the write's event came in two parts).
    assert hub.upstream_reads - before <= 2, hub.upstream_reads - before
    for feed in feeds:
        (await feed).close()


async def test_feeds_are_forwarded_one_by_one_when_multiplexing_is_off(couchdb: Upstream) -> None:
    gw = await start_gateway(couchdb, feed_multiplexing=False, **couchdb_settings(couchdb))
    try:
        hub = gw.app[keys.CHANGES_HUB]
        device = await gw.new_device()
        assert (await gw.call("PUT", "/db/notes/", device=device))[0] == 201
        feed = await gw.session.get(
            f"{gw.url}/db/notes/_changes?feed=longpoll&since=now&heartbeat=1000",
            headers=device.headers,
        )
        await asyncio.sleep(0.5)
        assert (hub.watching, hub.waiting()) == (False, 0)
        assert (await gw.call("PUT", "/db/notes/x", device=device, json={})).__getitem__(0) == 201
        answer = json.loads(await feed.text())
        assert [row["id"] for row in answer["results"]] == ["x"]
    finally:
        await stop_gateway(gw)


OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "include_docs": st.just("true"),
        "style": st.just("all_docs"),
        "conflicts": st.just("true"),
        "limit": st.integers(1, 3).map(str),
        "filter": st.just("_doc_ids"),
    },
)
WRITES = st.lists(st.tuples(st.integers(0, 1), st.sampled_from(["a", "b", "c"])), max_size=6)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    plan=st.lists(
        st.tuples(
            st.integers(0, 1),
            st.integers(0, 4),
            st.sampled_from(["longpoll", "continuous"]),
            OPTIONS,
            WRITES,
        ),
        min_size=1,
        max_size=4,
    )
)
async def test_held_feeds_answer_exactly_what_the_upstream_would(
    hub_gateway: GatewayHarness, plan: list[Any]
) -> None:
    """Random feeds (position, shape, parameters) on two databases, then random writes: every
    row a held feed gets is what the same read straight from CouchDB gives."""
    gw = hub_gateway
    device = await gw.new_device()
    apps = [f"h{n}" for n in range(2)]
    seqs: dict[str, list[Any]] = {}
    for app in apps:
        # One shard: with several, which rows a limit keeps and each row's seq depend on which
        # shard answers first, in CouchDB itself.
        status, _ = await gw.peek("PUT", f"/{gw.upstream_db(device, app)}?q=1")
        assert status == 201
        assert (await gw.call("PUT", f"/db/{app}/", device=device))[0] == 412  # and made its own
        seqs[app] = [0]
        for doc in ("a", "b"):
            await _write(gw, device, app, doc)
            seqs[app].append((await gw.call("GET", f"/db/{app}", device=device))[1]["update_seq"])
    for db_index, position, shape, options, writes in plan:
        app = apps[db_index]
        since = seqs[app][position % len(seqs[app])]
        query = {**options, "feed": shape, "since": since, "heartbeat": "500"}
        body = {"doc_ids": ["a", "c"]} if options.get("filter") == "_doc_ids" else None
        direct = {k: v for k, v in query.items() if k not in ("feed", "heartbeat")}
        feed = await _open(gw, device, app, query, body)
        try:
            if shape == "longpoll":
                await _check_longpoll(gw, device, apps, app, feed, direct, body, writes)
            else:
                await _check_continuous(gw, device, apps, app, feed, direct, body, writes)
        finally:
            feed.close()


async def _check_longpoll(
    gw: GatewayHarness,
    device: Device,
    apps: list[str],
    app: str,
    feed: aiohttp.ClientResponse,
    direct: dict[str, Any],
    body: Any,
    writes: list[tuple[int, str]],
) -> None:
    """Whenever the same read straight from CouchDB has rows, the held feed answers, and with
    exactly that read's answer (no write happens in between)."""
    for step in range(len(writes) + 1):
        if step:
            target, doc = writes[step - 1]
            await _write(gw, device, apps[target], doc)
        expected = await _direct(gw, device, app, direct, body)
        if expected["results"]:
            answer = json.loads(await asyncio.wait_for(feed.read(), timeout=ANSWER_S))
            assert _seqs_as_positions(answer) == _seqs_as_positions(expected), (direct, answer)
            return


async def _check_continuous(
    gw: GatewayHarness,
    device: Device,
    apps: list[str],
    app: str,
    feed: aiohttp.ClientResponse,
    direct: dict[str, Any],
    body: Any,
    writes: list[tuple[int, str]],
) -> None:
    """After each write, the rows the feed sent since the last look are exactly what a normal
    read from the feed's position gives (up to its limit)."""
    left = int(direct.get("limit", 1_000_000))
    position = direct["since"]
    for step in range(len(writes) + 1):
        if step:
            target, doc = writes[step - 1]
            await _write(gw, device, apps[target], doc)
        if left == 0:
            return
        expected = await _direct(
            gw, device, app, {**direct, "since": position, "limit": str(left)}, body
        )
        rows = []
        for _ in expected["results"]:
            line = b"\n"
            while not line.strip():
                line = await asyncio.wait_for(feed.content.readline(), timeout=ANSWER_S)
            rows.append(json.loads(line))
        assert _seqs_as_positions(rows) == _seqs_as_positions(expected["results"]), (direct, rows)
        if rows:
            position, left = rows[-1]["seq"], left - len(rows)


def _seqs_as_positions(value: Any) -> Any:
    """CouchDB's sequences are opaque: two reads of one position may spell it differently
    (``4-g1AAAA...``), so sequences are compared by the position they start with."""
    if isinstance(value, list):
        return [_seqs_as_positions(v) for v in value]
    if isinstance(value, dict):
        return {
            k: int(str(v).split("-")[0]) if k in ("seq", "last_seq") else _seqs_as_positions(v)
            for k, v in value.items()
        }
    return value


async def _write(gw: GatewayHarness, device: Device, app: str, doc: str) -> None:
    status, current = await gw.call("GET", f"/db/{app}/{doc}", device=device)
    body = {"v": 1} if status == 404 else {**current, "v": current["v"] + 1}
    assert (await gw.call("PUT", f"/db/{app}/{doc}", device=device, json=body))[0] == 201


async def _open(
    gw: GatewayHarness, device: Device, app: str, query: dict[str, Any], body: Any
) -> aiohttp.ClientResponse:
    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in query.items()}
    method = "POST" if body is not None else "GET"
    return await gw.session.request(
        method, f"{gw.url}/db/{app}/_changes", params=params, json=body, headers=device.headers
    )


async def _direct(
    gw: GatewayHarness, device: Device, app: str, query: dict[str, Any], body: Any
) -> Any:
    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in query.items()}
    upstream = gw.upstream
    url = f"{upstream.url}/{gw.upstream_db(device, app)}/_changes"
    async with aiohttp.ClientSession(headers=upstream.admin_headers()) as session:
        method = "POST" if body is not None else "GET"
        async with session.request(method, url, params=params, json=body) as resp:
            assert resp.status == 200
            return json.loads(await resp.read())


async def _until(condition: Callable[[], bool], within: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


class WatchCutter:
    """In front of CouchDB: streams everything through, and can cut the gateway's
    ``_db_updates`` watch and keep it away for a while (as a restart or a network cut would)."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self.session = aiohttp.ClientSession(auto_decompress=False)
        self.watches: list[web.Request] = []
        self.refusing = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/_db_updates":
            if self.refusing:
                raise web.HTTPServiceUnavailable()
            self.watches.append(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with self.session.request(
            request.method,
            self.upstream.url + request.raw_path,
            headers=headers,
            data=await request.read() if request.body_exists else None,
            timeout=aiohttp.ClientTimeout(total=None),
        ) as up:
            response = web.StreamResponse(status=up.status)
            for name, value in up.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    response.headers[name] = value
            await response.prepare(request)
            async for chunk in up.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    def cut(self) -> None:
        self.refusing = True
        for request in self.watches:
            if request.transport is not None:
                request.transport.close()
        self.watches.clear()


@dataclass
class _CutWatch:
    """A long poll held by the hub while its watch is cut and kept away, and a change written
    meanwhile ("unseen": no event will ever say so)."""

    gw: GatewayHarness
    hub: ChangesHub
    cutter: WatchCutter
    device: Device
    feed: aiohttp.ClientResponse

    async def answer_ids(self) -> list[str]:
        answer = json.loads(await asyncio.wait_for(self.feed.text(), timeout=15))
        return [row["id"] for row in answer["results"]]


@contextlib.asynccontextmanager
async def _held_while_the_watch_is_cut(
    couchdb: Upstream, heartbeat_ms: int
) -> AsyncIterator[_CutWatch]:
    cutter = WatchCutter(couchdb)
    server = TestServer(cutter.app, host="127.0.0.1", handler_cancellation=True)
    await server.start_server()
    gw = await start_gateway(
        couchdb, upstream_url=str(server.make_url("")).rstrip("/"), **couchdb_settings(couchdb)
    )
    try:
        hub = await _watching(gw)
        device = await gw.new_device()
        assert (await gw.call("PUT", "/db/notes/", device=device))[0] == 201
        _, info = await gw.call("GET", "/db/notes", device=device)
        feed = await gw.session.get(
            f"{gw.url}/db/notes/_changes?feed=longpoll&heartbeat={heartbeat_ms}"
            f"&since={info['update_seq']}",
            headers=device.headers,
        )
        await _until(lambda: hub.waiting() == 1)
        cutter.cut()
        await _until(lambda: not hub.watching)
        assert (await gw.call("PUT", "/db/notes/unseen", device=device, json={}))[0] == 201
        yield _CutWatch(gw, hub, cutter, device, feed)
    finally:
        await stop_gateway(gw)
        await cutter.session.close()
        await server.close()


async def test_a_watch_that_drops_loses_no_change(couchdb: Upstream) -> None:
    async with _held_while_the_watch_is_cut(couchdb, heartbeat_ms=1000) as cut:
        await asyncio.sleep(0.5)
        cut.cutter.refusing = False
        assert await cut.answer_ids() == ["unseen"]
        assert cut.hub.watching


async def test_a_wake_that_lands_as_a_heartbeat_falls_due_is_not_lost(couchdb: Upstream) -> None:
    """The watch's wake-up and a held feed's heartbeat timer can fall due in one turn of the
    loop (as when the watch comes back): the feed, resuming for its heartbeat, must still read.
    It used to forget the wake-up, and a long poll with a heartbeat then waited for good."""
    async with _held_while_the_watch_is_cut(couchdb, heartbeat_ms=200) as cut:
        # The watch stays away: only the wake below can tell the feed.
        (waiter,) = cut.hub._waiters[cut.gw.upstream_db(cut.device, "notes")]
        await _until(lambda: waiter.waiting is not None)
        waiter.wake(Wake.TICK)  # the heartbeat's timer, then in the same turn the watch's reset
        cut.hub.reset()
        assert await cut.answer_ids() == ["unseen"]
