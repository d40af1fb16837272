"""``couchgate serve`` as people run it: its own process, no CouchDB anywhere, the embedded store
in a data directory. PouchDB replicates through it, and what it acknowledged survives kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.harness import SECRET
from tests.pouch import device_remote, run_pouch
from tests.upstreams import free_port


@dataclass
class Served:
    url: str
    env: dict[str, str]
    proc: asyncio.subprocess.Process

    def db_url(self, app: str) -> str:
        return f"{self.url}/db/{app}"


async def _start(data_dir: Path, port: int) -> Served:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUCHGATE_")}
    env.update(
        COUCHGATE_SECRET_KEYS=SECRET,
        COUCHGATE_DATA_DIR=str(data_dir),
        COUCHGATE_PORT=str(port),
        COUCHGATE_PLAINTEXT_APPS="*",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url + "/") as r:
                    if r.status == 200:
                        return Served(url, env, proc)
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    proc.kill()
    raise AssertionError("couchgate serve did not come up")


async def _cli_json(served: Served, *argv: str) -> dict[str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *argv, env=served.env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    return dict(json.loads(out))


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Served, Path]]:
    served = await _start(tmp_path / "data", free_port())
    yield served, tmp_path / "data"
    if served.proc.returncode is None:
        served.proc.terminate()
        await served.proc.wait()


@dataclass
class _Device:
    token: str
    base: str

    def db_url(self, app: str) -> str:
        return f"{self.base}/db/{app}"


async def test_serve_with_no_upstream_replicates_and_survives_kill_9(
    served: tuple[Served, Path],
) -> None:
    server, data_dir = served
    added = await _cli_json(server, "users", "add", "owner@example.org", "--json")
    enroll = {"code": added["enrollment_code"], "device": "laptop"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + "/auth/enroll", json=enroll) as r,
    ):
        assert r.status == 201
        device = _Device((await r.json())["token"], server.url)

    docs = [{"_id": f"note-{i:04d}", "text": f"note {i}"} for i in range(300)]
    pushed = await run_pouch("push", remote=device_remote(device, "notes"), docs=docs)
    assert pushed["result"]["replication"]["docs_written"] == 300

    server.proc.send_signal(signal.SIGKILL)
    await server.proc.wait()
    again = await _start(data_dir, free_port())
    try:
        moved = _Device(device.token, again.url)
        pulled = await run_pouch("pull", remote=device_remote(moved, "notes"))
        assert sorted(d["_id"] for d in pulled["result"]["docs"]) == [d["_id"] for d in docs]
    finally:
        again.proc.terminate()
        await again.proc.wait()
