"""The smaller promises of couchgate-sync, each on real ``couchgate-sync`` processes and real
folders through a real couchgate: what is ignored, where paths are read from, how a pipe closed
early and a failed join end, which folder a command finds, who may read the client's files, the
key shown again, and that the client's own files never become notes.

The client's side is what these test, so the embedded store stands for every upstream in each
test of its own; the last test walks those that meet the server (share, history, a refused
join, what is uploaded) in one start-up on CouchDB and on pouchdb-server.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from encryption_plugin import Keyring
from gateway.upstream.backend import db_name
from tests.harness import GatewayHarness
from tests.sync.devices import FolderDevice, credentials_of, joined_user
from tests.sync.test_folder_sync import until

embedded_only = pytest.mark.parametrize("gateway_upstream", ["embedded"], indirect=True)


@embedded_only
async def test_emacs_autosave_files_stay_on_their_device(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, b = devices
    a.write("plan.md", "plan\n")
    a.write("#plan.md#", "autosave\n")
    a.write("deep/#notes.md#", "autosave\n")
    a.write("deep/a#b.md", "a real note with a hash in its name\n")
    await a.sync()
    await b.sync()
    assert b.files() == {
        "plan.md": b"plan\n",
        "deep/a#b.md": b"a real note with a hash in its name\n",
    }


@embedded_only
async def test_share_reads_its_path_in_the_folder_as_history_and_restore_do(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, _ = devices
    a.write("deep/plan.md", "plan\n")
    await a.sync()
    _, out, _ = await a.cli("share", "deep/plan.md", "--dir", str(a.folder))
    assert "/s/" in out and "#" in out
    _, out, _ = await a.cli("history", "deep/plan.md", "--dir", str(a.folder))
    assert "(current)" in out


@embedded_only
async def test_a_reader_that_stops_early_ends_the_listing_quietly(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    """``history --deleted | head``: the reader is gone before the listing is written."""
    a, _ = devices
    a.write("gone.md", "soon gone\n")
    await a.sync()
    (a.folder / "gone.md").unlink()
    await a.sync()
    await _into_a_closed_pipe(a, "history", "--deleted", "--dir", str(a.folder))


async def _into_a_closed_pipe(device: FolderDevice, *args: str) -> None:
    """``device``'s command, its reader gone before it writes: it ends quietly, as git does."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # a reader that has already stopped: every write meets a closed pipe
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "couchgate_sync",
            *args,
            env=device.env,
            stdout=write_end,
            stderr=asyncio.subprocess.PIPE,
        )
    finally:
        os.close(write_end)
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    assert err.decode() == ""
    assert proc.returncode == 128 + signal.SIGPIPE  # as a shell reports git's death by SIGPIPE


@embedded_only
async def test_a_failed_join_takes_back_the_folders_it_made(
    sealed_gateway: GatewayHarness, tmp_path: Path
) -> None:
    made = FolderDevice(tmp_path / "home", tmp_path / "New" / "Notes", "desk", sealed_gateway.url)
    code, _, err = await made.cli(
        "join", made.server, str(made.folder), "--code", "not-a-code", ok=False
    )
    assert code == 1 and "code is wrong" in err
    assert not (tmp_path / "New").exists()

    there = FolderDevice(tmp_path / "home", tmp_path / "Kept", "desk", sealed_gateway.url)
    there.folder.mkdir()
    code, _, _ = await there.cli(
        "join", there.server, str(there.folder), "--code", "not-a-code", ok=False
    )
    assert code == 1 and there.folder.is_dir()  # a folder that was there stays


@embedded_only
async def test_commands_find_the_synced_folder_from_inside_it_and_join_never_nests(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    a, b = devices
    a.write("deep/er/plan.md", "plan\n")
    _, _, err = await a.cli("sync", str(a.folder / "deep" / "er"))  # as git finds its root
    assert "synced: 1 local change" in err
    _, out, _ = await a.cli("status", str(a.folder / "deep"))
    assert str(a.folder) in out
    _, out, _ = await a.cli("history", "deep/er/plan.md", "--dir", str(a.folder / "deep"))
    assert "(current)" in out
    await b.sync()
    assert b.files() == {"deep/er/plan.md": b"plan\n"}

    _, code = await sealed_gateway.enrollment_code()
    for place, word in ((a.folder / "inner", "inside"), (a.folder.parent, "holds")):
        nested = FolderDevice(a.home, place, "again", sealed_gateway.url)
        status, _, err = await nested.cli(
            "join", nested.server, str(place), "--code", code, ok=False
        )
        assert status == 1 and word in err and str(a.folder) in err, err
    assert not (a.folder / "inner").exists()
    await a.sync()
    await b.sync()
    assert b.files() == {"deep/er/plan.md": b"plan\n"}


async def _one_device(gateway: GatewayHarness, home: Path, folder: Path) -> FolderDevice:
    device = FolderDevice(home, folder, "desk", gateway.url)
    _, code = await gateway.enrollment_code()
    await device.join("--code", code)
    return device


def _not_private(home: Path) -> dict[str, int]:
    """The client's directories not 0700 and files not 0600 under ``home``, with their modes."""
    found: dict[str, int] = {}
    for top in (home / "config", home / "data"):
        for p in (top, *top.rglob("*")):
            mode = stat.S_IMODE(p.stat().st_mode)
            if mode != (0o700 if p.is_dir() else 0o600):
                found[p.relative_to(home).as_posix()] = mode
    return found


def _loosen(home: Path) -> None:
    """Modes as an older client left them (0755 directories, 0644 files)."""
    for top in (home / "config", home / "data"):
        for p in (top, *top.rglob("*")):
            p.chmod(0o755 if p.is_dir() else 0o644)


@embedded_only
async def test_the_clients_state_store_and_settings_are_the_users_alone(
    sealed_gateway: GatewayHarness, tmp_path: Path
) -> None:
    device = await _one_device(sealed_gateway, tmp_path / "home", tmp_path / "Notes")
    device.write("plan.md", "plan\n")
    await device.sync()
    names = {p.name for p in (device.home / "data").rglob("*")}
    assert {"state.sqlite3", "store.sqlite3", "lock"} <= names
    assert _not_private(device.home) == {}

    _loosen(device.home)
    await device.cli("status", str(device.folder))  # opening the folder tightens them again
    assert _not_private(device.home) == {}


def _inside_the_folder(tmp_path: Path, where: str) -> FolderDevice:
    """A device whose client files live in its synced folder: under ``COUCHGATE_SYNC_HOME``
    there, or in the user's own directories when the folder is the home directory itself."""
    if where == "sync-home":
        folder = tmp_path / "Notes"
        return FolderDevice(folder / ".couchgate-sync", folder, "desk", "")
    home = tmp_path / "user"
    device = FolderDevice(home, home, "desk", "")
    device.extra_env = {
        "COUCHGATE_SYNC_HOME": "",  # the platform's own directories, in this home
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
    }
    return device


@pytest.mark.parametrize("where", ["sync-home", "home-directory"])
@embedded_only
async def test_the_clients_own_files_never_become_notes(
    sealed_gateway: GatewayHarness, tmp_path: Path, where: str
) -> None:
    a = _inside_the_folder(tmp_path, where)
    a.server = sealed_gateway.url
    _, code = await sealed_gateway.enrollment_code()
    await a.join("--code", code)
    secrets = [p for p in a.folder.rglob("*.json") if "credentials" in p.parts]
    assert secrets  # the credentials file is in the folder
    a.write("plan.md", "plan\n")
    await a.sync()
    assert "synced: nothing to do" in await a.sync()

    b = FolderDevice(tmp_path / "home-b", tmp_path / "B", "phone", sealed_gateway.url)
    await b.join("--pair", await a.pairing_link())
    await b.sync()
    assert b.files() == {"plan.md": b"plan\n"}
    if where == "sync-home":  # the home is the client's whole: not even its directory syncs
        _, listing = await sealed_gateway.peek(
            "GET", f"/{db_name(joined_user(a), 'notes')}/_all_docs"
        )
        assert len(listing["rows"]) == 1 and b.dirs() == set()
    else:  # the user's .config and .local stay theirs: empty of synced files, synced as such
        assert b.dirs() <= {".config", ".local", ".local/share"}

    # ``run`` writes its own files at each cycle (its state, its store): in the folder, they
    # wake no cycle of their own (else it would cycle for ever). The test's log of it is the
    # user's file in the home directory: ignored.
    a.write(".couchgateignore", "/run.log\n")
    await a.run_live()

    def cycles() -> int:
        found = next(a.folder.rglob("run.json"), None)  # in its data directory, wherever
        return int(json.loads(found.read_text())["started"]) if found is not None else 0

    try:
        await until(lambda: cycles() >= 1)
        await asyncio.sleep(2)
        started = cycles()
        await asyncio.sleep(2)
        assert cycles() == started
    finally:
        await a.stop_live()


@embedded_only
async def test_key_shows_the_export_string_again_on_any_device_that_has_it(
    devices: tuple[FolderDevice, FolderDevice], tmp_path: Path
) -> None:
    a, b = devices
    key = credentials_of(a)["key"]
    keyring = Keyring.from_export(key, app_id="notes")
    _, out, _ = await b.cli("key", str(b.folder))  # b was paired: it never printed the key
    assert f"\n{key}\n" in out and keyring.fingerprint() in out
    assert "\u2580" not in out and "\u2584" not in out
    _, out, _ = await a.cli("key", str(a.folder), "--qr")
    assert f"\n{key}\n" in out and keyring.qr("text") in out

    code, out, err = await b.cli("key", str(tmp_path), ok=False)
    assert code == 1 and "not a synced folder" in err and key not in out + err


@pytest.mark.parametrize("gateway_upstream", ["couchdb", "pouchdb-server"], indirect=True)
async def test_on_couchdb_and_pouchdb_server_the_small_items_that_meet_the_server(
    sealed_gateway: GatewayHarness, tmp_path: Path
) -> None:
    """A refused join takes back the folders it made; a device whose client files are in its
    folder uploads one note (not them, not an Emacs autosave), and its second sync has nothing
    to do; sync, share and history find the folder from a subfolder; ``history --deleted`` into
    a closed pipe ends quietly."""
    made = FolderDevice(tmp_path / "home", tmp_path / "New" / "Notes", "desk", sealed_gateway.url)
    code, _, err = await made.cli(
        "join", made.server, str(made.folder), "--code", "not-a-code", ok=False
    )
    assert code == 1 and "code is wrong" in err and not (tmp_path / "New").exists()

    a = _inside_the_folder(tmp_path, "sync-home")
    a.server = sealed_gateway.url
    _, enrollment = await sealed_gateway.enrollment_code()
    await a.join("--code", enrollment)
    a.write("deep/er/plan.md", "plan\n")
    a.write("deep/er/#plan.md#", "autosave\n")
    _, _, err = await a.cli("sync", str(a.folder / "deep" / "er"))  # as git finds its root
    assert "synced: 1 local change" in err, err
    assert "synced: nothing to do" in await a.sync()
    db = db_name(joined_user(a), "notes")
    _, listing = await sealed_gateway.peek("GET", f"/{db}/_all_docs")
    assert len(listing["rows"]) == 1, listing
    _, out, _ = await a.cli("share", "deep/er/plan.md", "--dir", str(a.folder / "deep"))
    assert "/s/" in out and "#" in out
    _, out, _ = await a.cli("history", "deep/er/plan.md", "--dir", str(a.folder / "deep"))
    assert "(current)" in out

    (a.folder / "deep/er/plan.md").unlink()
    await a.sync()
    await _into_a_closed_pipe(a, "history", "--deleted", "--dir", str(a.folder))
