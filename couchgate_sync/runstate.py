"""The running ``couchgate-sync run``'s state, in a small file of the folder's state directory.

``run`` rewrites ``run.json`` (atomically, through ``config.write_replacing``) at every change
of state: ``idle``, ``syncing`` or ``error`` since a time with the reason, the last successful
cycle to the second, its pid, and how many cycles it has started and finished. It removes the
file when it stops cleanly, so a file whose pid is gone is stale (the process was killed).

Two readers: ``status`` says what the running process is doing (or that none is going), and a
command that needs the folder's lock while ``run`` holds it (``sync``, ``restore``) asks the
running process to do the cycle instead: it sends SIGUSR1 and waits until ``run.json`` reports
a cycle started after the request as finished. One process syncs the folder, always; nothing
waits on a lock held for months, and nothing says "already syncing".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from .config import write_replacing

FILE = "run.json"
ASK_SIGNAL = signal.SIGUSR1  # "do a full cycle now", from a command beside ``run``
POLL_S = 0.1  # how often a command beside ``run`` reads the file while it waits


@dataclass(frozen=True)
class RunState:
    pid: int
    state: str  # "idle" | "syncing" | "error"
    since: int  # when it entered that state (epoch seconds)
    reason: str = ""  # the error, in words (never a file name)
    last_success: int = 0  # the end of the last cycle that worked (epoch seconds), 0: none
    started: int = 0  # cycles started
    finished: int = 0  # cycles finished, well or not


class Reporter:
    """What ``run`` keeps of its state, and the file it writes it to."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE
        self.current = RunState(os.getpid(), "idle", int(time.time()))

    async def begin(self) -> None:
        """A cycle starts: ``syncing``, unless it retries after an error (the error stands,
        with its time, until a cycle works)."""
        cur = self.current
        if cur.state == "error":
            self.current = replace(cur, started=cur.started + 1)
        else:
            self.current = replace(
                cur, state="syncing", since=int(time.time()), started=cur.started + 1
            )
        await self._save()

    async def end(self, error: str | None = None) -> None:
        """A cycle ended: ``idle`` when it worked, else ``error`` with ``error`` (the same
        error again keeps the time it began)."""
        now, cur = int(time.time()), self.current
        if error is None:
            self.current = replace(
                cur, state="idle", since=now, reason="", last_success=now, finished=cur.finished + 1
            )
        else:
            same = cur.state == "error" and cur.reason == error
            self.current = replace(
                cur,
                state="error",
                since=cur.since if same else now,
                reason=error,
                finished=cur.finished + 1,
            )
        await self._save()

    async def _save(self) -> None:
        await asyncio.to_thread(_write, self.path, self.current)

    async def remove(self) -> None:
        """Gone with the process; one it cannot remove (not a file any more) is stale once the
        pid is gone, and the process's own sentence, not this, is what it ends with."""
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self.path.unlink, True)


def _write(path: Path, state: RunState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_replacing(path, json.dumps(asdict(state)))


def read(state_dir: Path) -> RunState | None:
    """The recorded state of ``run`` for this folder; None when none is recorded."""
    try:
        raw = json.loads((state_dir / FILE).read_text("utf-8"))
        return RunState(**raw)
    except (FileNotFoundError, ValueError, TypeError):
        return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive, if not ours
        return True
    return True


def running(state_dir: Path) -> RunState | None:
    """The state of a ``run`` that is going for this folder (its pid alive), else None."""
    found = read(state_dir)
    return found if found is not None and alive(found.pid) else None


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe(state_dir: Path) -> str:
    """The ``run:`` line of ``status``."""
    found = read(state_dir)
    if found is None:
        return "no couchgate-sync run is going for this folder"
    if not alive(found.pid):
        return (
            f"no couchgate-sync run is going: the one recorded (pid {found.pid}) is gone "
            "without saying so (killed?); this record is stale"
        )
    who = f"the running couchgate-sync (pid {found.pid})"
    last = f"since {_when(found.last_success)}" if found.last_success else "yet"
    if found.state == "error":
        return f"{who} has not synced {last}: {found.reason}"
    done = f"last synced {_when(found.last_success)}" if found.last_success else "not synced yet"
    return f"{who} is {found.state}, {done}"


class RunGone(Exception):
    def __init__(self, pid: int) -> None:
        super().__init__(f"the running couchgate-sync (pid {pid}) stopped before syncing")


class RunFailed(Exception):
    def __init__(self, pid: int, reason: str) -> None:
        super().__init__(f"the running couchgate-sync (pid {pid}) could not sync: {reason}")


async def ask_for_cycle(state: RunState, state_dir: Path) -> RunState:
    """Have the running process (``state``, just read) do a full cycle; its state once a cycle
    started after this call has finished. Raises ``RunFailed`` with its reason when that cycle
    failed, ``RunGone`` when the process ends first."""
    after = state.started
    os.kill(state.pid, ASK_SIGNAL)
    while True:
        await asyncio.sleep(POLL_S)
        now = await asyncio.to_thread(read, state_dir)
        if now is None or now.pid != state.pid or not alive(state.pid):
            raise RunGone(state.pid)
        if now.finished > after:  # a cycle that started after the request has ended
            if now.state == "error":
                raise RunFailed(now.pid, now.reason)
            return now
