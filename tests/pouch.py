"""Run the real PouchDB client (``tests/js/client.mjs``) under Node from async tests.

The driver runs as a subprocess through ``asyncio.create_subprocess_exec``, so a gateway serving
in the same event loop keeps answering while PouchDB talks to it. The command goes in as the
first line of stdin; the result comes back as the last line of stdout. See the header of
``client.mjs`` for the commands.

Most commands run start to finish (:func:`run_pouch`). A few stop at a named point and wait for
the test to act first (revoke a device, say): :class:`PouchSession` reads the driver's
``{"event": ...}`` lines and sends the line that lets it go on.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

JS_DIR = Path(__file__).parent / "js"
CLIENT = JS_DIR / "client.mjs"
E2E = JS_DIR / "e2e.mjs"
# The steps of client.mjs's ``sync-live``, in order, as (name, ok) when each went through.
SYNC_LIVE_STEPS_OK = [
    ("both caught up", True),
    ("a writes, b sees", True),
    ("b writes, a sees", True),
    ("a updates b's doc, b sees", True),
    ("b deletes a's doc, a sees", True),
]


class HasToken(Protocol):
    token: str

    def db_url(self, app: str) -> str: ...


class PouchClientError(Exception):
    """The driver threw, printed nothing parseable, or ran out of time."""

    def __init__(
        self, message: str, *, output: dict[str, Any] | None = None, stderr: str = ""
    ) -> None:
        super().__init__(f"{message}\n--- driver stderr (tail) ---\n{stderr[-4000:]}")
        self.output = output
        self.stderr = stderr


def device_remote(device: HasToken, app: str, *, scheme: str = "bearer") -> dict[str, Any]:
    """A remote for the driver: the gateway's ``/db/<app>`` as this device."""
    return {"url": device.db_url(app), "token": device.token, "scheme": scheme}


def direct_remote(url: str, user: str | None, password: str | None) -> dict[str, Any]:
    """A remote for the driver: a database straight on an upstream, with its admin's Basic."""
    return {"url": url, "user": user, "password": password}


class PouchSession:
    """One running driver command. Use as ``async with await PouchSession.start(...) as s:``;
    leaving the block kills the Node process if it is still running."""

    def __init__(self, command: str, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.command = command
        self._proc = proc
        self._stdin = proc.stdin
        self._stdout = proc.stdout
        self._stderr = bytearray()
        self._stderr_task = asyncio.ensure_future(self._drain(proc.stderr))
        self.lines: list[str] = []

    @classmethod
    async def open(cls, command: str, driver: Path = CLIENT) -> PouchSession:
        """``driver`` (a script of tests/js) running, before any line is sent to it; ``command``
        names it in errors."""
        node = shutil.which("node")
        if node is None:
            raise PouchClientError("node is not on PATH")
        proc = await asyncio.create_subprocess_exec(
            node,
            str(driver),
            cwd=JS_DIR,
            limit=64 * 1024 * 1024,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(command, proc)

    @classmethod
    async def start(cls, command: str, driver: Path = CLIENT, **params: Any) -> PouchSession:
        """``command`` sent to a new ``driver`` process."""
        session = await cls.open(command, driver)
        await session.send({"command": command, **params})
        return session

    @property
    def stderr(self) -> str:
        return self._stderr.decode(errors="replace")

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self._stderr.extend(chunk)

    async def send(self, message: dict[str, Any]) -> None:
        """One JSON line to the driver (the command, then whatever lets it go on)."""
        try:
            self._stdin.write(json.dumps(message).encode() + b"\n")
            await self._stdin.drain()
        except ConnectionResetError:
            await self._proc.wait()
            raise PouchClientError(
                f"`{self.command}` ended before it read {message}: {self.lines[-1:]}",
                stderr=self.stderr,
            ) from None

    async def _read_line(self) -> str | None:
        raw = await self._stdout.readline()
        if not raw:
            return None
        line = raw.decode().strip()
        if line:
            self.lines.append(line)
        return line

    async def wait_for(self, event: str, timeout: float = 30.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The driver's next ``{"event": event, ...}`` line; fails if it finishes first."""

        async def read() -> dict[str, Any]:
            while (line := await self._read_line()) is not None:
                if line.startswith("{") and (message := json.loads(line)).get("event") == event:
                    return dict(message)
            raise PouchClientError(
                f"`{self.command}` ended before `{event}`: {self.lines[-1:]}", stderr=self.stderr
            )

        try:
            return await asyncio.wait_for(read(), timeout)
        except TimeoutError:
            raise PouchClientError(
                f"`{self.command}` did not reach `{event}` in {timeout} s", stderr=self.stderr
            ) from None

    async def result(
        self,
        timeout: float = 60.0,  # noqa: ASYNC109 - on expiry the Node process is killed
        check: bool = True,
    ) -> dict[str, Any]:
        """Wait for the driver to finish and return its output (``result``, ``http``, ...).

        With ``check``, a failed command and a rejection nobody handled (``unhandled``: the
        driver notes these rather than dying, see driver.mjs) both raise."""

        async def finish() -> int:
            self._stdin.close()
            while await self._read_line() is not None:
                pass
            await self._stderr_task
            return await self._proc.wait()

        try:
            returncode = await asyncio.wait_for(finish(), timeout)
        except TimeoutError:
            await self.kill()
            raise PouchClientError(
                f"`{self.command}` timed out after {timeout} s", stderr=self.stderr
            ) from None
        try:
            output: dict[str, Any] = json.loads(self.lines[-1])
        except (IndexError, json.JSONDecodeError):
            raise PouchClientError(
                f"`{self.command}` exited {returncode} without a JSON result: {self.lines[-3:]}",
                stderr=self.stderr,
            ) from None
        if check and output.get("unhandled"):
            raise PouchClientError(
                f"`{self.command}` left rejections nobody handled: {output['unhandled']}",
                output=output,
                stderr=self.stderr,
            )
        if check and not output.get("ok"):
            raise PouchClientError(
                f"`{self.command}` failed: {output.get('error')}; HTTP failures: "
                f"{json.dumps(output.get('http', {}).get('failures'))[:3000]}",
                output=output,
                stderr=self.stderr,
            )
        return output

    async def kill(self) -> None:
        if self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()
        self._stderr_task.cancel()

    async def __aenter__(self) -> PouchSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.kill()


async def run_pouch(
    command: str,
    *,
    timeout: float = 60.0,  # noqa: ASYNC109 - on expiry the Node process is killed, not abandoned
    check: bool = True,
    driver: Path = CLIENT,
    **params: Any,
) -> dict[str, Any]:
    """Run one command of ``driver`` (``client.mjs``, or ``e2e.mjs`` with the ep1 plugin) to its
    end and return its whole output.

    With ``check`` (the default) a failed command raises :class:`PouchClientError`; without it
    the caller gets ``{"ok": false, "error": ...}`` to inspect. Past ``timeout`` seconds, or
    when the caller is cancelled, the Node process is killed.
    """
    async with await PouchSession.start(command, driver, **params) as session:
        return await session.result(timeout, check)


def _is_probe(failure: dict[str, Any]) -> bool:
    # What a healthy replication legitimately gets: PouchDB probes the remote db (GET, then PUT,
    # which may race to 412) and looks for its checkpoint in _local before the first run.
    path: str = failure["path"].split("?", 1)[0]
    status, method = failure["status"], failure["method"]
    if status == 404 and method == "GET":
        return "/_local/" in path or (path.endswith("/") and path != "/db/")
    return status == 412 and method == "PUT" and path.endswith("/")


def unexpected_http_failures(output: dict[str, Any]) -> list[dict[str, Any]]:
    """HTTP responses >= 400 the driver saw, other than the probes every replication makes."""
    failures: list[dict[str, Any]] = output.get("http", {}).get("failures", [])
    return [f for f in failures if not _is_probe(f)]
