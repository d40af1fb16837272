"""SIGTERM to ``couchgate serve`` (its own process, on its embedded store) during a push and
during a live sync: it stops accepting, lets requests in flight finish, ends live feeds cleanly,
and exits well within ``shutdown_timeout``; after a restart on the same port both clients carry
on and every document is there."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.harness import SECRET
from tests.pouch import PouchSession, device_remote, run_pouch
from tests.upstreams import free_port

SHUTDOWN_TIMEOUT_S = 20


@dataclass
class Server:
    data_dir: Path
    port: int
    proc: asyncio.subprocess.Process | None = None

    @property
    def log(self) -> Path:
        return self.data_dir.parent / "serve.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COUCHGATE_")}
        env.update(
            COUCHGATE_SECRET_KEYS=SECRET,
            COUCHGATE_DATA_DIR=str(self.data_dir),
            COUCHGATE_PORT=str(self.port),
            COUCHGATE_PLAINTEXT_APPS="*",
            COUCHGATE_SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT_S),
        )
        return env

    async def start(self) -> None:
        with self.log.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway",
                "serve",
                env=self.env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )
        async with aiohttp.ClientSession() as session:
            for _ in range(400):
                try:
                    async with session.get(self.url + "/readyz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("couchgate serve did not become ready")

    async def terminate(self) -> float:
        """SIGTERM; how long the process took to exit (it must exit 0)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), SHUTDOWN_TIMEOUT_S + 10)
        assert code == 0, self.log.read_text()[-3000:]
        return time.monotonic() - started

    async def enroll(self) -> Device:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "users",
            "add",
            "x@example.org",
            "--json",
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        code = json.loads(out)["enrollment_code"]
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url + "/auth/enroll", json={"code": code, "device": "d"}) as r,
        ):
            assert r.status == 201
            return Device((await r.json())["token"], self.url)


@dataclass
class Device:
    token: str
    base: str

    def db_url(self, app: str) -> str:
        return f"{self.base}/db/{app}"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    served = Server(tmp_path / "data", free_port())
    await served.start()
    yield served
    if served.proc is not None and served.proc.returncode is None:
        served.proc.kill()
        await served.proc.wait()


async def _doc_count(device: Device, app: str) -> int:
    headers = {"Authorization": f"Bearer {device.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(device.db_url(app) + "/", headers=headers) as r,
    ):
        return int((await r.json()).get("doc_count", 0)) if r.status == 200 else 0


@pytest.mark.slow
async def test_sigterm_during_a_push_loses_nothing_acknowledged(server: Server) -> None:
    device = await server.enroll()
    remote = device_remote(device, "notes")
    generate = {"count": 3000, "size": 200}
    first = asyncio.ensure_future(
        run_pouch("push", remote=remote, generate=generate, batch_size=50, check=False)
    )
    while (seen := await _doc_count(device, "notes")) < 300:
        assert not first.done(), first.result()
        await asyncio.sleep(0.02)
    took = await server.terminate()
    assert took < SHUTDOWN_TIMEOUT_S / 2
    await first  # failed or finished: either way the client stopped

    await server.start()  # same data, same port
    # Everything the store had acknowledged before the signal is still there.
    assert await _doc_count(device, "notes") >= seen
    resumed = await run_pouch("push", remote=remote, generate=generate, batch_size=500)
    assert resumed["result"]["replication"]["ok"]
    pulled = await run_pouch("pull", remote=remote, batch_size=500, timeout=120)
    ids = [d["_id"] for d in pulled["result"]["docs"]]
    assert ids == [f"doc-{i:04d}" for i in range(3000)]


@pytest.mark.slow
async def test_sigterm_ends_live_feeds_and_the_sync_resumes_after_restart(
    server: Server,
) -> None:
    device = await server.enroll()
    docs = [{"_id": f"before-{i:02d}", "n": i} for i in range(20)]
    async with await PouchSession.start(
        "sync-through-restart", remote=device_remote(device, "notes"), docs=docs, timeout_ms=45000
    ) as session:
        await session.wait_for("ready")
        took = await server.terminate()
        # A live feed left open (PouchDB's carry heartbeats, so they never end by themselves)
        # would hold shutdown until shutdown_timeout.
        assert took < SHUTDOWN_TIMEOUT_S / 2, f"shutdown took {took:.1f} s"
        await server.start()
        await session.send({"go": True})
        out = (await session.result(timeout=120))["result"]
    assert out["up"] and out["down"], (out, server.log.read_text()[-3000:])
    ids = {d["_id"] for d in out["docs"]}
    assert ids == {d["_id"] for d in docs} | {"after-restart", "from-server"}
    assert await _doc_count(device, "notes") == 22
