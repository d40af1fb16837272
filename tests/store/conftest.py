"""Fixtures for the embedded store: the store on a loopback test server, and a tiny CouchDB
client that talks to it and to the reference servers the same way.

The reference is Apache CouchDB (``COUCHDB_URL``, or the session's CouchDB container) and, as a
second opinion, pouchdb-server. Comparisons with CouchDB skip, saying so, when none is
configured; pouchdb-server always runs.
"""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from couchlite.server import create_store_app
from tests.upstreams import Upstream, pouchdb_server

ADMIN = ("admin", "store-test-password")
_names = itertools.count()


@dataclass
class Couch:
    """A CouchDB-speaking server under test: ``req`` answers ``(status, json_or_bytes)``."""

    kind: str
    url: str
    session: aiohttp.ClientSession

    async def req(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        raw: bool = False,
    ) -> tuple[int, Any]:
        # As PouchDB asks: CouchDB answers */* with multipart where it can.
        send_headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            **(headers or {}),
        }
        payload = data if data is not None else (None if body is None else json.dumps(body))
        async with self.session.request(
            method, self.url + path, data=payload, headers=send_headers
        ) as resp:
            content = await resp.read()
            if raw:
                return resp.status, content
            return resp.status, json.loads(content) if content.strip() else None

    async def response(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        async with self.session.request(method, self.url + path, **kwargs) as resp:
            return resp, await resp.read()


def auth_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def fresh_db_name(prefix: str = "t") -> str:
    """Unique across test runs: the reference server lives for the whole session."""
    return f"{prefix}{next(_names)}-{uuid.uuid4().hex[:10]}"


def make_store_app(path: Path) -> web.Application:
    return create_store_app(path, admin_user=ADMIN[0], admin_password=ADMIN[1])


@pytest.fixture
async def store_server(
    tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> TestServer:
    return await aiohttp_server(make_store_app(tmp_path / "data"))


@pytest.fixture
async def store(store_server: TestServer) -> AsyncIterator[Couch]:
    url = str(store_server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession(headers={"Authorization": auth_header(*ADMIN)}) as session:
        yield Couch("embedded", url, session)


@pytest.fixture(scope="session")
def pouchdb_upstream() -> Iterator[Upstream]:
    with pouchdb_server() as up:
        yield up


def _couchdb_upstream(request: pytest.FixtureRequest) -> Upstream:
    upstream: Upstream = request.getfixturevalue("upstream")
    if not upstream.is_couchdb:
        pytest.skip("no Apache CouchDB configured (set COUCHDB_URL to compare with it)")
    return upstream


@pytest.fixture(params=["couchdb", "pouchdb-server"])
async def reference(request: pytest.FixtureRequest) -> AsyncIterator[Couch]:
    """A real server the store is compared with: CouchDB (the reference), then pouchdb-server."""
    if request.param == "couchdb":
        upstream = _couchdb_upstream(request)
    else:
        upstream = request.getfixturevalue("pouchdb_upstream")
    async with aiohttp.ClientSession(headers=upstream.admin_headers()) as session:
        yield Couch(upstream.kind, upstream.url, session)


@pytest.fixture
async def couchdb(request: pytest.FixtureRequest) -> AsyncIterator[Couch]:
    """Apache CouchDB alone, for scenarios where pouchdb-server is known to differ."""
    upstream = _couchdb_upstream(request)
    async with aiohttp.ClientSession(headers=upstream.admin_headers()) as session:
        yield Couch(upstream.kind, upstream.url, session)


@pytest.fixture
async def both(store: Couch, reference: Couch) -> list[Couch]:
    return [store, reference]


@pytest.fixture
async def vs_couchdb(store: Couch, couchdb: Couch) -> list[Couch]:
    return [store, couchdb]
