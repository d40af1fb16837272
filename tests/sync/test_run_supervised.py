"""``couchgate-sync run`` left alone: it never stops in silence, ``status`` says what it is
doing, and the other commands work beside it. Real ``couchgate-sync`` processes on real
folders, through a real couchgate."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest

from couchgate_sync import notes
from tests.harness import GatewayHarness
from tests.sync.devices import FolderDevice, credentials_of
from tests.sync.test_folder_sync import keyring_of, put_sealed, until

# The folder side and the process's own state do not depend on the upstream.
embedded_only = pytest.mark.parametrize("gateway_upstream", ["embedded"], indirect=True)
WITHIN_S = 90.0  # a liveness bound on a loaded machine, not a speed check
TOO_LONG = "長" * 100 + ".md"  # 302 bytes in UTF-8: fine on macOS and Windows, not on ext4
SETTLED = (  # what ``status`` says once nothing is left to do (``run`` going)
    "pending:    0 local change(s) not yet recorded, 0 document(s) not yet uploaded",
    "downloads:  0 change(s) waiting on the server",
    "is idle, last synced",
)


def state_is(device: FolderDevice, state: str) -> bool:
    found = device.run_state()
    return found is not None and found["state"] == state


async def synced_to(device: FolderDevice, expected: dict[str, bytes]) -> None:
    """``sync`` ``device`` until its folder holds ``expected`` (another device's ``run``
    uploads in its own time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN_S
    while True:
        await device.sync()
        if device.files() == expected:
            return
        assert loop.time() < deadline, "the changes did not arrive"
        await asyncio.sleep(0.5)


async def status_says(device: FolderDevice, *lines: str) -> str:
    """``status`` of ``device`` once it says all of ``lines`` (``run`` may be finishing a
    cycle when first asked); fails with the last report when it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN_S
    while True:
        _, report, _ = await device.cli("status", str(device.folder))
        if all(line in report for line in lines):
            return report
        assert loop.time() < deadline, report
        await asyncio.sleep(0.5)


@embedded_only
async def test_run_on_a_missing_folder_is_a_clear_error(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, _ = devices
    shutil.rmtree(a.folder)  # joined (its marker in it), then the folder went (a drive unplugged)
    await a.run_live()
    assert a.live is not None
    code = await asyncio.wait_for(a.live.wait(), WITHIN_S)
    assert code == 1
    assert "the folder is missing" in (a.home / "run.log").read_text()


@embedded_only
async def test_a_folder_that_goes_away_is_an_error_state_that_clears_when_it_is_back(
    devices: tuple[FolderDevice, FolderDevice], tmp_path: Path
) -> None:
    a, b = devices
    a.write("kept.md", "kept\n")
    await a.run_live()
    await b.run_live()
    await until(lambda: b.files() == {"kept.md": b"kept\n"}, within_s=WITHIN_S)
    away = tmp_path / "Notes B, moved"
    b.folder.rename(away)
    a.write("while-away.md", "new\n")
    await until(lambda: state_is(b, "error") or b.folder.exists(), within_s=WITHIN_S)
    assert not b.folder.exists()  # the download waits: no folder made again with one file
    _, report, _ = await b.cli("status", str(b.folder))
    assert "has not synced since" in report and "the folder is missing" in report, report

    shutil.copytree(away, b.folder)  # back, as another directory (a new inode)
    await until(lambda: b.files().get("while-away.md") == b"new\n", within_s=WITHIN_S)
    await until(lambda: state_is(b, "idle"), within_s=WITHIN_S)
    b.write("after.md", "written after\n")  # the watch follows the new directory
    await until(lambda: a.files().get("after.md") == b"written after\n", within_s=WITHIN_S)
    assert a.files() == {
        "kept.md": b"kept\n",
        "while-away.md": b"new\n",
        "after.md": b"written after\n",
    }  # nothing deleted
    assert b.live is not None and b.live.returncode is None
    log = (b.home / "run.log").read_text()
    assert log.count("the folder is missing") == 1, log  # one line per change of state
    assert "syncing again" in log


@embedded_only
async def test_run_stops_when_its_credentials_go_or_it_is_revoked(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    a, b = devices
    await a.run_live()
    await b.run_live()
    await until(lambda: state_is(a, "idle") and state_is(b, "idle"), within_s=WITHIN_S)

    for creds in (a.home / "config" / "credentials").glob("*.json"):
        creds.unlink()  # the person removed this device's sign-in (keyring entry, file)
    a.write("after.md", "written after\n")  # its next cycle notices (at the latest its feed)
    token = credentials_of(b)["token"]
    headers = {"Authorization": f"Bearer {token}"}
    _, me = await sealed_gateway.call("GET", "/auth/me", headers=headers)
    status, _ = await sealed_gateway.call(
        "DELETE", f"/auth/devices/{me['device']}", headers=headers
    )
    assert status == 200  # revoked on the server: b's next answer from it says so

    assert a.live is not None and b.live is not None
    assert await asyncio.wait_for(a.live.wait(), WITHIN_S) == 1
    assert await asyncio.wait_for(b.live.wait(), WITHIN_S) == 3
    log_a, log_b = ((d.home / "run.log").read_text() for d in (a, b))
    assert "this device's credentials are gone" in log_a, log_a
    assert "revoked" in log_b, log_b
    assert "Traceback" not in log_a + log_b
    assert "synced:" not in log_a.split("watching", 1)[1]  # after.md was not uploaded


@embedded_only
async def test_a_task_of_run_that_ends_ends_the_process_with_a_sentence(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    """Provoked for real: the state file ``run`` writes at every cycle made a directory, so the
    sync loop's own bookkeeping fails outside the cycle it supervises (no fault hook)."""
    a, _ = devices
    await a.run_live()
    await until(lambda: state_is(a, "idle"), within_s=WITHIN_S)
    (state_file,) = (a.home / "data").glob("*/run.json")
    state_file.unlink()
    state_file.mkdir()
    a.write("wakes.md", "a cycle\n")
    assert a.live is not None
    assert await asyncio.wait_for(a.live.wait(), WITHIN_S) == 1
    log = (a.home / "run.log").read_text()
    assert "the sync loop stopped unexpectedly (IsADirectoryError); couchgate-sync run stops" in log
    assert "Traceback" not in log, log


@embedded_only
async def test_status_tells_the_truth(devices: tuple[FolderDevice, FolderDevice]) -> None:
    a, b = devices
    notes = {f"note-{i}.md": f"note {i}\n".encode() for i in range(5)}
    for rel, data in notes.items():
        a.write(rel, data)
    a.write("scratch.log", "made before it was ignored\n")
    await a.run_live()
    await synced_to(b, {**notes, "scratch.log": b"made before it was ignored\n"})
    a.write(".couchgateignore", "*.log\n")  # the synced file becomes ignored
    expected = {
        **notes,
        "scratch.log": b"made before it was ignored\n",
        ".couchgateignore": b"*.log\n",
    }
    await synced_to(b, expected)
    await status_says(
        a,
        "pending:    0 local change(s) not yet recorded, 0 document(s) not yet uploaded",
        "downloads:  0 change(s) waiting on the server",  # its own uploads are not waiting
    )
    await status_says(a, "is idle, last synced")

    assert a.live is not None
    a.live.kill()  # kill -9: the state file stays behind
    await a.live.wait()
    _, report, _ = await a.cli("status", str(a.folder))
    assert "this record is stale" in report, report


@embedded_only
async def test_sync_restore_and_rewind_work_beside_run(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, b = devices
    a.write("note.md", "one\n")
    two_hours_ago = time.time() - 7200
    os.utime(a.folder / "note.md", (two_hours_ago, two_hours_ago))  # saved then
    await a.run_live()
    # It holds the folder's lock once it says so.
    await until(lambda: "watching" in (a.home / "run.log").read_text(), within_s=WITHIN_S)
    _, _, err = await a.cli("sync", str(a.folder))
    assert "synced by the running couchgate-sync" in err
    await b.sync()
    assert b.files() == {"note.md": b"one\n"}

    a.write("note.md", "two\n")
    await a.cli("sync", str(a.folder))
    await b.sync()
    assert b.files() == {"note.md": b"two\n"}

    _, out, err = await a.cli("rewind", "--to", "1h", "--dir", str(a.folder))
    assert "rewound 1 file(s), 0 of them deleted since then" in out
    # Both of its cycles (what is there recorded first, then the rewind sent) were `run`'s.
    assert err.count("synced by the running couchgate-sync") == 2, err
    assert a.files() == {"note.md": b"one\n"}
    await b.sync()
    assert b.files() == {"note.md": b"one\n"}

    _, out, _ = await a.cli("restore", "note.md", "2", "--dir", str(a.folder))
    assert "restored version 2" in out
    assert a.files() == {"note.md": b"two\n"}
    await b.sync()
    assert b.files() == {"note.md": b"two\n"}  # restore's cycle was done by `run`
    assert a.live is not None and a.live.returncode is None
    await a.stop_live()
    _, report, _ = await a.cli("status", str(a.folder))
    assert "no couchgate-sync run is going for this folder" in report, report


@embedded_only
async def test_what_was_downloaded_is_not_pending_upload(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    """A pull writes to the local store after the push checkpoint; a device that only
    downloaded has nothing to send, and ``status`` must not say otherwise."""
    a, b = devices
    a.write("note.md", "from a\n")
    await a.sync()
    await b.sync()  # its push found nothing; then it downloaded the note
    assert b.files() == {"note.md": b"from a\n"}
    _, report, _ = await b.cli("status", str(b.folder))
    assert "0 local change(s) not yet recorded, 0 document(s) not yet uploaded" in report, report


async def _arrives(device: FolderDevice, other: FolderDevice, expected: dict[str, bytes]) -> None:
    """``device``'s running ``run`` brings its folder to ``expected``; else fails with both
    devices' ``run`` logs (no names or bodies in them), to say which side stopped."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN_S
    while device.files() != expected:
        if loop.time() > deadline:
            logs = [(d.home / "run.log").read_text()[-3000:] for d in (other, device)]
            raise AssertionError(
                f"{sorted(device.files())} != {sorted(expected)}\n" + "\n".join(logs)
            )
        await asyncio.sleep(0.05)


# The embedded store runs each item in its own test (above, test_failed_items, test_small_items);
# the upstreams whose answers may differ walk them in one start-up each, to keep CI short.
@pytest.mark.parametrize("gateway_upstream", ["couchdb", "pouchdb-server"], indirect=True)
async def test_on_couchdb_and_pouchdb_server_run_goes_on_and_the_rest_works_beside_it(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    """Issue 21 against each upstream, with both devices' ``run`` going: live both ways; an
    Emacs autosave file stays local; a note B cannot hold is one warning and ``run`` goes on;
    ``sync``, ``rewind``, ``history`` and ``restore`` beside ``run``, done by it; ``status``
    true on both; ``key`` on the paired device; then revoked on the server and its credentials
    gone, each ``run`` ends with its sentence and exit code."""
    a, b = devices
    a.write("note.md", "one\n")
    two_hours_ago = time.time() - 7200
    os.utime(a.folder / "note.md", (two_hours_ago, two_hours_ago))  # saved then
    a.write("#note.md#", "an autosave\n")
    await a.run_live()
    await b.run_live()
    await _arrives(b, a, {"note.md": b"one\n"})

    too_long = notes.seal_note(
        "toolong", TOO_LONG, b"x\n", mtime_ms=1, origin="mac", created=None, keyring=keyring_of(a)
    )
    await put_sealed(sealed_gateway, a, too_long)
    a.write("note.md", "two\n")
    warned = "skipped a document this device cannot write"
    await _arrives(b, a, {"note.md": b"two\n"})
    await until(lambda: warned in (b.home / "run.log").read_text(), within_s=WITHIN_S)

    _, _, err = await a.cli("sync", str(a.folder))
    assert "synced by the running couchgate-sync" in err, err
    _, out, err = await a.cli("rewind", "--to", "1h", "--dir", str(a.folder))
    assert "rewound 1 file(s), 0 of them deleted since then" in out, out
    assert "synced by the running couchgate-sync" in err, err
    await _arrives(b, a, {"note.md": b"one\n"})
    _, listing, _ = await b.cli("history", "note.md", "--dir", str(b.folder))
    assert len(listing.splitlines()) == 4, listing  # header, one, two, one again
    _, out, err = await a.cli("restore", "note.md", "2", "--dir", str(a.folder))
    assert "restored version 2" in out and "synced by the running couchgate-sync" in err, err
    await _arrives(b, a, {"note.md": b"two\n"})

    await status_says(a, *SETTLED)
    report = await status_says(b, *SETTLED, "failed:     1 document(s) this device cannot write")
    assert f"{TOO_LONG}  (name too long for this file system; since" in report, report
    _, out, _ = await b.cli("key", str(b.folder))
    assert f"\n{credentials_of(a)['key']}\n" in out
    assert (b.home / "run.log").read_text().count(warned) == 1

    for creds in (a.home / "config" / "credentials").glob("*.json"):
        creds.unlink()
    a.write("after.md", "written after\n")
    headers = {"Authorization": f"Bearer {credentials_of(b)['token']}"}
    _, me = await sealed_gateway.call("GET", "/auth/me", headers=headers)
    status, _ = await sealed_gateway.call(
        "DELETE", f"/auth/devices/{me['device']}", headers=headers
    )
    assert status == 200
    assert a.live is not None and b.live is not None
    assert await asyncio.wait_for(a.live.wait(), WITHIN_S) == 1
    assert await asyncio.wait_for(b.live.wait(), WITHIN_S) == 3
    log_a, log_b = ((d.home / "run.log").read_text() for d in (a, b))
    assert "this device's credentials are gone" in log_a and "revoked" in log_b, log_a + log_b
    assert "Traceback" not in log_a + log_b
