"""Fixtures of the integration tests that start ``couchgate serve`` as its own process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.served import Server
from tests.upstreams import free_port


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    served = Server(tmp_path / "data", free_port())
    await served.start()
    yield served
    if served.proc is not None and served.proc.returncode is None:
        served.proc.kill()
        await served.proc.wait()
