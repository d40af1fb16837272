"""Shared fixtures: real upstreams for the session, and a fresh gateway per test.

Every gateway test runs three times: in front of Apache CouchDB (the reference, in ``jwt`` mode
as docker-compose runs it), of pouchdb-server (``admin`` mode), and of the embedded store (as
``couchgate serve`` runs by default)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.harness import GatewayHarness, GatewayTarget, MakeGateway, start_gateway, stop_gateway
from tests.upstreams import Upstream, apache_couchdb, couchdb_required, pouchdb_server

NO_COUCHDB = (
    "needs Apache CouchDB (COUCHDB_URL, couchdb-test-server via COUCHDB_TEST_SERVER or PATH, "
    "or Docker); the same tests run against pouchdb-server and the embedded store"
)


@pytest.fixture(scope="session")
def _couchdb_session() -> Iterator[Upstream | None]:
    with apache_couchdb() as up:
        yield up


@pytest.fixture
def couchdb(_couchdb_session: Upstream | None) -> Upstream:
    """Apache CouchDB 3.x, with its admin and the JWT secret it trusts."""
    if _couchdb_session is None:
        if couchdb_required():
            pytest.fail("COUCHGATE_REQUIRE_COUCHDB is set but no CouchDB was found")
        pytest.skip(NO_COUCHDB)
    return _couchdb_session


@pytest.fixture(scope="session")
def pouchdb() -> Iterator[Upstream]:
    with pouchdb_server() as up:
        yield up


@pytest.fixture
def upstream(_couchdb_session: Upstream | None, request: pytest.FixtureRequest) -> Upstream:
    """The best real upstream at hand: Apache CouchDB, else pouchdb-server."""
    if _couchdb_session is not None:
        return _couchdb_session
    if couchdb_required():
        pytest.fail("COUCHGATE_REQUIRE_COUCHDB is set but no CouchDB was found")
    up: Upstream = request.getfixturevalue("pouchdb")
    return up


def couchdb_settings(couchdb: Upstream, mode: str = "jwt") -> dict[str, object]:
    """Gateway settings for one of the upstream auth modes against CouchDB."""
    if mode == "jwt":
        return {"upstream_auth": "jwt", "upstream_jwt_secret": couchdb.jwt_secret}
    if mode == "proxy":
        return {"upstream_auth": "proxy", "upstream_proxy_secret": couchdb.proxy_secret}
    return {}


@pytest.fixture(params=["couchdb", "pouchdb-server", "embedded"])
def gateway_upstream(request: pytest.FixtureRequest, tmp_path: Path) -> GatewayTarget:
    """What the gateway under test talks to: Apache CouchDB (``jwt`` mode, the compose default,
    when its JWT secret is known), pouchdb-server, or its own embedded store (no upstream
    configured, as ``couchgate serve`` runs by default)."""
    if request.param == "couchdb":
        couchdb: Upstream = request.getfixturevalue("couchdb")
        mode = "jwt" if couchdb.jwt_secret else "admin"
        return GatewayTarget(couchdb, couchdb_settings(couchdb, mode))
    if request.param == "pouchdb-server":
        return GatewayTarget(request.getfixturevalue("pouchdb"), {})
    return GatewayTarget(None, {"data_dir": str(tmp_path / "embedded")})


@pytest.fixture
async def gateway(gateway_upstream: GatewayTarget) -> AsyncIterator[GatewayHarness]:
    """A fresh couchgate (own records database) in front of a real upstream."""
    harness = await start_gateway(gateway_upstream.upstream, **gateway_upstream.settings)
    try:
        yield harness
    finally:
        await stop_gateway(harness)


@pytest.fixture
async def make_gateway(
    gateway_upstream: GatewayTarget,
) -> AsyncIterator[MakeGateway]:
    """Start gateways with settings of the test's own (``make_gateway(registration="invite")``);
    gateways made by one test share its upstream (or its embedded store's data directory)."""
    started: list[GatewayHarness] = []

    async def make(**overrides: object) -> GatewayHarness:
        settings = {**gateway_upstream.settings, **overrides}
        harness = await start_gateway(gateway_upstream.upstream, **settings)
        started.append(harness)
        return harness

    yield make
    for harness in started:
        await stop_gateway(harness)
