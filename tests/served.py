"""``couchgate serve`` as its own process, as people run it: for the tests that need a real
process (kill -9, SIGTERM) and for the benchmarks that measure one (its memory, its descriptors).

It imports neither pytest nor the in-process harness, so ``bench/`` uses it as ``tests/`` does.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
# Any key of the right length: a served process's data is thrown away with it.
SECRET = "served-secret-key-0123456789abcdef0123456789"
SHUTDOWN_TIMEOUT_S = 20
READY_WAIT_S = 30


def serve_env(**values: str) -> dict[str, str]:
    """This process's environment without its own ``COUCHGATE_*`` settings (a developer's shell
    may have some), with the secret key and ``values``: the caller says all there is."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUCHGATE_")}
    env.update(COUCHGATE_SECRET_KEYS=SECRET, **values)
    return env


async def start_serve(
    port: int,
    env: dict[str, str],
    log: Path,
    preexec_fn: Callable[[], None] | None = None,
) -> asyncio.subprocess.Process:
    """``python -m gateway serve`` on ``port`` from this checkout, its log appended to ``log``,
    once ``/readyz`` answers 200; killed again if it never does."""
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "serve",
            env={**env, "COUCHGATE_PORT": str(port)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=out,
            cwd=ROOT,
            preexec_fn=preexec_fn,
        )
    url = f"http://127.0.0.1:{port}/readyz"
    async with aiohttp.ClientSession() as session:
        for _ in range(int(READY_WAIT_S / 0.05)):
            try:
                async with session.get(url) as r:
                    if r.status == 200:
                        return proc
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    proc.kill()
    await proc.wait()
    raise RuntimeError(f"couchgate serve did not become ready (see {log})")


@asynccontextmanager
async def serving(
    port: int, env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A started ``couchgate serve`` for the block, terminated after it."""
    proc = await start_serve(port, env, log)
    try:
        yield proc
    finally:
        proc.terminate()
        await proc.wait()


async def users_add(env: dict[str, str], email: str) -> dict[str, str]:
    """What ``couchgate users add --json`` prints, run as its own process with ``env``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "users",
        "add",
        email,
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out
    added: dict[str, str] = json.loads(out)
    return added


async def enroll(url: str, env: dict[str, str], email: str, device: str) -> str:
    """A device token of a new account: ``couchgate users add`` from a second process with the
    served one's settings, then the enrollment its code allows."""
    code = (await users_add(env, email))["enrollment_code"]
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/auth/enroll", json={"code": code, "device": device}) as r,
    ):
        assert r.status == 201, await r.text()
        return str((await r.json())["token"])


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
        return serve_env(
            COUCHGATE_DATA_DIR=str(self.data_dir),
            COUCHGATE_PORT=str(self.port),
            COUCHGATE_PLAINTEXT_APPS="*",
            COUCHGATE_SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT_S),
        )

    async def start(self) -> None:
        self.proc = await start_serve(self.port, self.env, self.log)

    async def terminate(self) -> float:
        """SIGTERM; how long the process took to exit (it must exit 0)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), SHUTDOWN_TIMEOUT_S + 10)
        assert code == 0, self.log.read_text()[-3000:]
        return time.monotonic() - started

    async def enroll(self) -> ServedDevice:
        return ServedDevice(await enroll(self.url, self.env, "x@example.org", "d"), self.url)


@dataclass
class ServedDevice:
    """A device enrolled on a served gateway: named apart from the gateway's own ``Device``
    record and the harness's, so each name says one thing."""

    token: str
    base: str

    def db_url(self, app: str) -> str:
        return f"{self.base}/db/{app}"
