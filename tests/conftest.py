"""Shared fixtures: a real upstream for the session, and a fresh gateway per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from tests.harness import GatewayHarness, start_gateway, stop_gateway
from tests.upstreams import Upstream, primary_upstream


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    with primary_upstream() as up:
        yield up


@pytest.fixture
async def gateway(upstream: Upstream) -> AsyncIterator[GatewayHarness]:
    """A fresh couchgate (own records database) in front of the session's upstream."""
    harness = await start_gateway(upstream)
    try:
        yield harness
    finally:
        await stop_gateway(harness)


@pytest.fixture
async def make_gateway(
    upstream: Upstream,
) -> AsyncIterator[Callable[..., Awaitable[GatewayHarness]]]:
    """Start gateways with settings of the test's own (``make_gateway(registration="invite")``)."""
    started: list[GatewayHarness] = []

    async def make(**overrides: object) -> GatewayHarness:
        harness = await start_gateway(upstream, **overrides)
        started.append(harness)
        return harness

    yield make
    for harness in started:
        await stop_gateway(harness)
