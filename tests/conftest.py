"""Shared fixtures: a real upstream for the session, and a fresh gateway per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import GatewayHarness, GatewayTarget, start_gateway, stop_gateway
from tests.upstreams import Upstream, primary_upstream


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    with primary_upstream() as up:
        yield up


@pytest.fixture(params=["upstream", "embedded"])
def gateway_upstream(request: pytest.FixtureRequest, tmp_path: Path) -> GatewayTarget:
    """What the gateway under test talks to: the session's real upstream, or its own embedded
    store (no upstream configured, as ``couchgate serve`` runs by default). Every gateway test
    runs against both."""
    if request.param == "upstream":
        return GatewayTarget(request.getfixturevalue("upstream"), {})
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
) -> AsyncIterator[Callable[..., Awaitable[GatewayHarness]]]:
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
