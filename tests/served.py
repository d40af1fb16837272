"""``couchgate serve`` as its own process on its embedded store, as people run it, for the tests
that need a real process (kill -9, SIGTERM)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.harness import SECRET

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
