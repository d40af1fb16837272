"""Folder devices for the sync tests: real ``couchgate-sync`` processes on real temp folders.

Each device has a home of its own (``COUCHGATE_SYNC_HOME``: config, credentials file, local
store and state) and a folder; commands run as subprocesses awaited on the test's loop, so the
in-process gateway keeps answering while they run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from couchgate_sync.ignore import MARKER

REPO = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT_S = 120


@dataclass
class FolderDevice:
    home: Path
    folder: Path
    name: str
    server: str
    live: asyncio.subprocess.Process | None = field(default=None)
    clock_offset_s: float = 0.0
    extra_env: dict[str, str] = field(default_factory=dict)  # settings of this device only

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            COUCHGATE_SYNC_HOME=str(self.home),
            COUCHGATE_SYNC_KEYRING="file",
            PYTHONPATH=str(REPO),
            COUCHGATE_SYNC_CLOCK_OFFSET_S=str(self.clock_offset_s),
        )
        env.update(self.extra_env)
        return env

    async def start(self, *args: str, stdin: int | None = None) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "couchgate_sync",
            *args,
            env=self.env,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def cli(self, *args: str, ok: bool = True) -> tuple[int, str, str]:
        proc = await self.start(*args)
        out, err = await asyncio.wait_for(proc.communicate(), COMMAND_TIMEOUT_S)
        code = proc.returncode
        assert code is not None
        if ok:
            assert code == 0, (args, out.decode(), err.decode())
        return code, out.decode(), err.decode()

    async def join(self, *how: str) -> str:
        _, out, _ = await self.cli(
            "join", self.server, str(self.folder), "--device", self.name, *how
        )
        return out

    async def sync(self) -> str:
        _, _, err = await self.cli("sync", str(self.folder))
        return err

    async def pairing_link(self) -> str:
        _, out, _ = await self.cli("pair", str(self.folder))
        return next(line for line in out.splitlines() if "#pair=" in line).strip()

    async def run_live(self) -> None:
        """``run`` in the background, its log to ``home/run.log`` (a pipe nobody reads would
        fill up and stall it)."""
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / "run.log").open("ab") as log:
            self.live = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "couchgate_sync",
                "run",
                str(self.folder),
                env=self.env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )

    async def stop_live(self) -> None:
        if self.live is not None and self.live.returncode is None:
            self.live.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.live.wait(), 20)
            except TimeoutError:
                self.live.kill()
                await self.live.wait()
        self.live = None

    def run_state(self) -> dict[str, Any] | None:
        """What the device's ``run`` recorded of its state (``runstate``), None when nothing."""
        from couchgate_sync.config import folder_key

        path = self.home / "data" / folder_key(self.folder) / "run.json"
        try:
            found: dict[str, Any] = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return found

    def files(self) -> dict[str, bytes]:
        """Every file in the folder, by relative POSIX path (the folder marker aside).

        Read while a running client may be changing the folder: a directory or file gone
        between its listing and its reading is left out of this look (the callers poll
        until the folder holds what they expect), never an error of the test's own."""
        found: dict[str, bytes] = {}
        for top, _, names in os.walk(self.folder):  # skips a directory gone meanwhile
            for name in names:
                path = Path(top, name)
                if path == self.folder / MARKER or not path.is_file():
                    continue
                try:
                    data = path.read_bytes()
                except (FileNotFoundError, NotADirectoryError):
                    continue
                found[path.relative_to(self.folder).as_posix()] = data
        return dict(sorted(found.items()))

    def dirs(self) -> set[str]:
        """Every directory in the folder, by relative POSIX path (one gone while it is listed
        is left out, as in :meth:`files`)."""
        return {
            Path(top, name).relative_to(self.folder).as_posix()
            for top, names, _ in os.walk(self.folder)
            for name in names
            if Path(top, name).is_dir()
        }

    def write(self, rel: str, data: bytes | str) -> None:
        path = self.folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)


def joined_user(device: FolderDevice) -> str:
    """The account id a device joined as (from its folder settings, which hold no secret)."""
    import json

    (cfg,) = (device.home / "config" / "folders").glob("*.json")
    return str(json.loads(cfg.read_text())["user"])


def credentials_of(device: FolderDevice) -> dict[str, str]:
    import json

    (creds,) = (device.home / "config" / "credentials").glob("*.json")
    raw: dict[str, str] = json.loads(creds.read_text())
    return raw


async def settle(*devices: FolderDevice, rounds: int = 2) -> None:
    """Sync every device in turn, ``rounds`` times: enough for a conflict resolved on one device
    to reach all of them."""
    for _ in range(rounds):
        for device in devices:
            await device.sync()
