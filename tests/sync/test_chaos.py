"""Two ``couchgate-sync run`` devices under a scripted storm, the way months of real use go:
edits, creates, renames and deletions on both sides; one device's folder moved away and back;
the gateway process restarted; a note no disk can hold arriving from another client; one
device's folder emptied (the mass-deletion guard holds it, ``deletions undo`` brings it back);
one ``run`` killed with SIGKILL and started again. Afterwards the two folders must agree, every
content that was ever saved must still be somewhere a user can get it back, ``status`` must
say what is true, and neither ``run`` may have stalled.

Everything is real: a ``couchgate serve`` process on the embedded store, and again in front
of Apache CouchDB (jwt mode, as docker-compose runs it; the gateway restarts, CouchDB stays
up), two ``run`` processes on two temp folders. The storm comes from a fixed seed, so a
failure replays. Each round touches a file at most once per device and waits for both folders
to match the model before the next: "saved" means it reached the other device, and a content
overwritten before a device could see it was never saved. One round edits the same file on
both sides at once (a conflict), where the model cannot say who wins, only that neither
content is lost.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import aiohttp
import pytest

from couchgate_sync import notes
from tests.served import Server, users_add
from tests.sync.devices import FolderDevice, credentials_of
from tests.sync.test_folder_sync import keyring_of
from tests.sync.test_run_supervised import status_says
from tests.sync.test_vault_guard import HELD, _rm_rf_everything_in
from tests.upstreams import Upstream, free_port

SEED = 21
WITHIN_S = 90.0  # a liveness bound on a loaded machine, not a speed check
TOO_LONG = "長" * 100 + ".md"  # a 302-byte path component: no ext4 file system holds it


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail saying ``what`` did not happen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN_S
    while not condition():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.2)


@dataclass
class Storm:
    """The seeded storm and what it expects: the model tree and every content it wrote."""

    a: FolderDevice
    b: FolderDevice
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))
    model: dict[str, bytes] = field(default_factory=dict)
    written: set[bytes] = field(default_factory=set)
    counter: int = 0
    touched: set[str] = field(default_factory=set)  # since the devices last converged
    deleted: set[str] = field(default_factory=set)  # names are never used again
    done: Counter[str] = field(default_factory=Counter)  # operations made, by kind

    def _content(self, device: FolderDevice, rel: str) -> bytes:
        self.counter += 1
        # Several lines, so that edits look like edits; unique, so each is traceable.
        return f"# {rel}\nversion {self.counter} by {device.name}\nseed {SEED}\n".encode()

    def _new_name(self) -> str:
        self.counter += 1
        folder = self.rng.choice(["", "", "sub/", "deep/er/"])
        return f"{folder}note {self.counter}.md"

    def round(self, *sides: FolderDevice, ops: int = 6) -> None:
        """``ops`` random operations on each of ``sides``, no file touched twice before the
        devices converge (a file another device just made may not be on this one yet)."""
        touched = self.touched
        for device in sides:
            for _ in range(ops):
                free = sorted(set(self.model) - touched)
                kind = self.rng.choice(["create", "edit", "edit", "rename", "delete", "move"])
                if kind == "move" and self._move_folder(device):
                    self.done["move"] += 1
                    continue
                if kind in ("create", "move") or len(free) < 3:
                    kind = "create"
                    rel = self._new_name()
                    self._write(device, rel)
                    touched.add(rel)
                    self.done[kind] += 1
                    continue
                self.done[kind] += 1
                rel = self.rng.choice(free)
                touched.add(rel)
                if kind == "edit":
                    self._write(device, rel)
                elif kind == "rename":
                    new = self._new_name()
                    target = device.folder / new
                    target.parent.mkdir(parents=True, exist_ok=True)
                    (device.folder / rel).rename(target)
                    self.model[new] = self.model.pop(rel)
                    touched.add(new)
                else:
                    (device.folder / rel).unlink()
                    del self.model[rel]
                    self.deleted.add(rel)

    def _move_folder(self, device: FolderDevice) -> bool:
        """Rename a top-level folder none of whose files was touched yet; False: none."""
        tops = sorted({rel.split("/")[0] for rel in self.model if "/" in rel})
        untouched = [
            top
            for top in tops
            if not any(rel.startswith(top + "/") for rel in self.touched)
            and (device.folder / top).is_dir()
        ]
        if not untouched:
            return False
        top = self.rng.choice(untouched)
        self.counter += 1
        new_top = f"folder {self.counter}"
        (device.folder / top).rename(device.folder / new_top)
        for rel in [r for r in self.model if r.startswith(top + "/")]:
            new = new_top + rel[len(top) :]
            self.model[new] = self.model.pop(rel)
            self.touched |= {rel, new}
        return True

    def _write(self, device: FolderDevice, rel: str) -> None:
        data = self._content(device, rel)
        device.write(rel, data)
        self.model[rel] = data
        self.written.add(data)

    async def converged(self, what: str) -> None:
        """Both folders hold the model: every change of the round went through."""
        await until(lambda: self.a.files() == self.model == self.b.files(), what)
        self.touched.clear()


def state_of(device: FolderDevice) -> str | None:
    found = device.run_state()
    return None if found is None else str(found["state"])


async def server_contents(server: Server, device: FolderDevice) -> set[bytes]:
    """Every file and kept-version content the account's server holds, as any client of the
    account reads it over the HTTP API (what ``history`` and ``restore`` draw on)."""
    keyring = keyring_of(device)
    headers = {"Authorization": f"Bearer {credentials_of(device)['token']}"}
    url = f"{server.url}/db/notes/_all_docs?include_docs=true"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as r:
        assert r.status == 200, await r.text()
        listed = await r.json()
    found: set[bytes] = set()
    for row in listed["rows"]:
        note = notes.open_note(row["doc"], keyring, kind=None)
        if note is not None and note.kind in ("file", "version"):
            found.add(note.data)
    return found


async def inject_impossible_note(server: Server, device: FolderDevice) -> None:
    """The note another client of the account (a Mac) may well write: a 300-byte name."""
    doc = notes.seal_note(
        "chaos-too-long",
        TOO_LONG,
        b"no ext4 disk can hold my name\n",
        mtime_ms=1,
        origin="mac",
        created=None,
        keyring=keyring_of(device),
    )
    headers = {"Authorization": f"Bearer {credentials_of(device)['token']}"}
    url = f"{server.url}/db/notes/{doc['_id']}"
    async with aiohttp.ClientSession() as session, session.put(url, json=doc, headers=headers) as r:
        assert r.status == 201, await r.text()


SETTLED = (  # what ``status`` says once nothing is left to do
    "pending:    0 local change(s) not yet recorded, 0 document(s) not yet uploaded",
    "downloads:  0 change(s) waiting on the server",
    "conflicts:  0 unresolved",
    "is idle, last synced",
)


def held_from(device: FolderDevice, files: int) -> None:
    """The mass-deletion guard of ``device`` holding more than ``files`` deletions (a setting
    of the folder's, documented), so that a storm of a few dozen files can empty a folder."""
    (path,) = (device.home / "config" / "folders").glob("*.json")
    path.write_text(json.dumps({**json.loads(path.read_text()), "deletion_guard_files": files}))


def good_cycle_since(device: FolderDevice, moment: int) -> bool:
    """``device``'s ``run.json`` says idle, with a cycle that worked finished at or after
    ``moment`` (seconds)."""
    found = device.run_state()
    return found is not None and found["state"] == "idle" and found["last_success"] >= moment


async def quiet(a: FolderDevice, b: FolderDevice) -> dict[str, bytes]:
    """The tree both devices hold once neither has anything left to do: ``status`` settled
    on both, and both folders the same and unchanged across those checks (a conflict settles
    in a few exchanges; a moment of equal folders in between is not the end of it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN_S
    while True:
        before = a.files()
        await status_says(a, *SETTLED)
        await status_says(b, *SETTLED)
        if before == a.files() == b.files():
            return before
        assert loop.time() < deadline, "the devices did not settle"
        await asyncio.sleep(0.5)


@dataclass
class ServedOnCouchDB(Server):
    """``couchgate serve`` in front of Apache CouchDB, its records in a database of its own
    (the CouchDB is shared by the test workers)."""

    couchdb: Upstream | None = None
    records_db: str = field(default_factory=lambda: f"couchgate-chaos-{secrets.token_hex(6)}")

    @property
    def env(self) -> dict[str, str]:
        couchdb = self.couchdb
        assert couchdb is not None
        env = {k: v for k, v in super().env.items() if k != "COUCHGATE_DATA_DIR"}
        env.update(
            COUCHGATE_UPSTREAM_URL=couchdb.url,
            COUCHGATE_UPSTREAM_USER=couchdb.user or "",
            COUCHGATE_UPSTREAM_PASSWORD=couchdb.password or "",
            COUCHGATE_RECORDS_DB=self.records_db,
        )
        if couchdb.jwt_secret:
            env.update(
                COUCHGATE_UPSTREAM_AUTH="jwt", COUCHGATE_UPSTREAM_JWT_SECRET=couchdb.jwt_secret
            )
        return env


@pytest.mark.parametrize("upstream", ["embedded", "couchdb"])
async def test_two_running_devices_come_through_a_storm(
    tmp_path: Path, upstream: str, request: pytest.FixtureRequest
) -> None:
    if upstream == "couchdb":
        couchdb: Upstream = request.getfixturevalue("couchdb")
        server: Server = ServedOnCouchDB(tmp_path / "data", free_port(), couchdb=couchdb)
    else:
        server = Server(tmp_path / "data", free_port())
    await server.start()
    a = FolderDevice(tmp_path / "home-a", tmp_path / "Notes A", "laptop", server.url)
    b = FolderDevice(tmp_path / "home-b", tmp_path / "Notes B", "phone", server.url)
    try:
        code = (await users_add(server.env, "chaos@example.org"))["enrollment_code"]
        await a.join("--code", code)
        await b.join("--pair", await a.pairing_link())
        await _storm(server, a, b, tmp_path)
        if isinstance(server, ServedOnCouchDB) and server.couchdb is not None:
            assert server.couchdb.request("GET", f"/{server.records_db}")[0] == 200  # CouchDB's
    finally:
        await a.stop_live()
        await b.stop_live()
        if server.proc is not None and server.proc.returncode is None:
            await server.terminate()


async def _storm(server: Server, a: FolderDevice, b: FolderDevice, tmp_path: Path) -> None:
    storm = Storm(a, b)
    held_from(b, 3)
    await a.run_live()
    await b.run_live()
    storm.round(a, b, ops=5)
    await storm.converged("the first files did not reach both devices")
    for _ in range(3):
        storm.round(a, b)
        await storm.converged("edits, renames and deletions on both sides did not converge")

    # B's folder moved away (a drive unplugged): B waits in an error state, A goes on.
    away = tmp_path / "Notes B, away"
    b.folder.rename(away)
    await until(lambda: state_of(b) == "error", "b's run did not notice its folder was gone")
    storm.round(a)
    await until(lambda: a.files() == storm.model, "a's own folder changed under it")
    away.rename(b.folder)
    await storm.converged("b did not catch up once its folder was back")

    # Another client of the account writes a note whose name this disk cannot hold.
    await inject_impossible_note(server, a)
    storm.round(a, b)
    await storm.converged("a note that cannot be written blocked the rest")

    # The gateway process restarted, with changes on both sides while it is down.
    await server.terminate()
    storm.round(a, b)
    await server.start()
    await storm.converged("the devices did not come back after the server restarted")

    # Both sides edit one file at once: whoever wins, both contents stay.
    shared = sorted(storm.model)[0]
    for device in (a, b):
        storm._write(device, shared)
    storm.model = await quiet(a, b)
    storm.touched.clear()

    # B's folder emptied (``rm -rf Notes/*``): the guard holds the deletions, A keeps every
    # file, and ``deletions undo`` beside B's run brings them back.
    _rm_rf_everything_in(b.folder)
    await status_says(b, HELD)
    assert a.files() == storm.model
    _, out, err = await b.cli("deletions", "undo", str(b.folder))
    assert f"{len(storm.model)} file(s) written back" in out, out
    assert "synced by the running couchgate-sync" in err, err  # one process cycles a folder
    await storm.converged("the files did not come back after deletions undo")
    await status_says(b, *SETTLED)

    # A's run killed in the middle of things, started again.
    storm.round(a)
    assert a.live is not None
    a.live.kill()
    await a.live.wait()
    storm.round(b)
    await a.run_live()
    last_fault = int(time.time())
    await storm.converged("the devices did not converge after a run was killed")
    storm.round(a, b)
    await storm.converged("the last round did not converge")

    # The seed made every kind of change (a change of seed must not quietly drop one).
    assert set(storm.done) == {"create", "edit", "rename", "delete", "move"}, storm.done

    # The trees converged (above); status tells the truth on both.
    assert await quiet(a, b) == storm.model
    for device in (a, b):
        _, report, _ = await device.cli("status", str(device.folder))
        assert "failed:     1 document(s) this device cannot write" in report, report
        assert f"{TOO_LONG}  (name too long for this file system; since" in report, report
        assert "waiting:" not in report and "has not synced since" not in report, report
        # No process stalled: each finished a good cycle after the last fault, and still runs.
        await until(
            partial(good_cycle_since, device, last_fault),
            f"{device.name}'s run logged no good cycle after the last fault",
        )
        assert device.live is not None and device.live.returncode is None
        assert "Traceback" not in (device.home / "run.log").read_text()
    assert TOO_LONG not in "".join(a.files()) + "".join(b.files())

    # Nothing ever saved is lost: current on both devices, or a kept version on the server.
    reachable = set(a.files().values()) | await server_contents(server, a)
    lost = storm.written - reachable
    assert not lost, sorted(lost)
    for device in (a, b):
        _, listing, _ = await device.cli("history", "--deleted", "--dir", str(device.folder))
        missing = {path for path in storm.deleted if f"{path}  (deleted;" not in listing}
        assert not missing, listing
