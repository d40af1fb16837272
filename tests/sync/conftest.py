"""Fixtures for the sync tests: a real couchgate (the parametrized ``make_gateway``) requiring
encryption for every app, and a pair of folder devices of one account."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.harness import GatewayHarness
from tests.sync.devices import FolderDevice


@pytest.fixture
async def sealed_gateway(
    make_gateway: Callable[..., Awaitable[GatewayHarness]],
) -> GatewayHarness:
    """couchgate with encryption required for every app: a plaintext write would be refused."""
    return await make_gateway(plaintext_apps="")


@pytest.fixture
async def devices(
    sealed_gateway: GatewayHarness, tmp_path: Path
) -> AsyncIterator[tuple[FolderDevice, FolderDevice]]:
    """Two devices of one account: ``a`` enrolled (it makes the key), ``b`` paired from it."""
    a = FolderDevice(tmp_path / "home-a", tmp_path / "Notes A", "laptop", sealed_gateway.url)
    b = FolderDevice(tmp_path / "home-b", tmp_path / "Notes B", "phone", sealed_gateway.url)
    _, code = await sealed_gateway.enrollment_code()
    await a.join("--code", code)
    await b.join("--pair", await a.pairing_link())
    try:
        yield a, b
    finally:
        await a.stop_live()
        await b.stop_live()
