"""Failed items: one note this device cannot write never blocks the rest; files with names other
systems cannot hold are said once; files the server refuses for quota wait, listed, and go later.

Real ``couchgate-sync`` processes on real folders, through a real couchgate; the impossible note
arrives as another client of the account would send it (sealed, over the HTTP API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from couchgate_sync import notes
from gateway.upstream.backend import db_name
from tests.harness import GatewayHarness
from tests.sync.devices import FolderDevice, credentials_of, joined_user
from tests.sync.test_folder_sync import keyring_of, put_sealed, server_docs, until

# What this device decides alone runs on one upstream; the server's quota answer on all three.
embedded_only = pytest.mark.parametrize("gateway_upstream", ["embedded"], indirect=True)

TOO_LONG = "長" * 100 + ".md"  # 302 bytes in UTF-8: fine on macOS and Windows, not on ext4


async def _current(gateway: GatewayHarness, device: FolderDevice, doc_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {credentials_of(device)['token']}"}
    status, doc = await gateway.call("GET", f"/db/notes/{doc_id}", headers=headers)
    assert status == 200, doc
    return dict(doc)


@embedded_only
async def test_a_note_this_disk_cannot_hold_is_a_failed_item_and_the_rest_syncs(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    a, b = devices
    a.write("good 1.md", "one\n")
    a.write("sub/good 2.md", "two\n")
    await a.sync()
    for doc_id, path in (("toolong", "Notes/" + TOO_LONG), ("nul", "bad\0name.md")):
        doc = notes.seal_note(
            doc_id,
            path,
            b"unwritable\n",
            mtime_ms=1,
            origin="mac",
            created=None,
            keyring=keyring_of(a),
        )
        await put_sealed(sealed_gateway, a, doc)

    code, _, err = await b.cli("sync", str(b.folder))
    assert code == 0, err
    assert "Traceback" not in err
    assert err.count("skipped a document this device cannot write") == 2
    assert TOO_LONG not in err and "bad" not in err  # the reason and a short hash, no names
    assert b.files() == {"good 1.md": b"one\n", "sub/good 2.md": b"two\n"}
    _, report, _ = await b.cli("status", str(b.folder))
    assert f"Notes/{TOO_LONG}  (name too long for this file system; since" in report
    assert "bad\\x00name.md  (a NUL byte in the name, which file systems refuse; since" in report
    assert "failed:     2 document(s) this device cannot write" in report

    # Later syncs go on, and say nothing new of the same failure; the other device too.
    a.write("good 3.md", "three\n")
    code, _, err = await a.cli("sync", str(a.folder))
    assert code == 0, err
    code, _, err = await b.cli("sync", str(b.folder))
    assert code == 0, err
    assert "skipped a document" not in err
    assert b.files()["good 3.md"] == b"three\n"

    # Renamed on the device that made it (a new revision with a path this disk can hold).
    old = await _current(sealed_gateway, a, "toolong")
    fixed = notes.seal_note(
        "toolong",
        "Notes/short.md",
        b"unwritable no more\n",
        mtime_ms=2,
        origin="mac",
        created=None,
        keyring=keyring_of(a),
    )
    await put_sealed(sealed_gateway, a, {**fixed, "_rev": old["_rev"]})
    code, _, err = await b.cli("sync", str(b.folder))
    assert code == 0, err
    assert b.files()["Notes/short.md"] == b"unwritable no more\n"
    _, report, _ = await b.cli("status", str(b.folder))
    assert "failed:     1 document(s) this device cannot write" in report
    assert TOO_LONG not in report


@embedded_only
async def test_run_goes_on_past_a_note_this_disk_cannot_hold(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    a, b = devices
    await b.run_live()
    for doc_id, path, data in (("toolong", TOO_LONG, b"unwritable\n"), ("ok", "after.md", b"ok\n")):
        doc = notes.seal_note(
            doc_id, path, data, mtime_ms=1, origin="mac", created=None, keyring=keyring_of(a)
        )
        await put_sealed(sealed_gateway, a, doc)  # one after the other, as another device would
    # The two land in one page, in the store's order, not the server's: the warning may come
    # just after the other file is written, so the test waits for both.
    warned = "skipped a document this device cannot write"
    await until(
        lambda: b.files().get("after.md") == b"ok\n" and warned in (b.home / "run.log").read_text(),
        within_s=90,
    )
    assert b.live is not None and b.live.returncode is None
    assert (b.home / "run.log").read_text().count(warned) == 1


@embedded_only
async def test_a_name_other_systems_cannot_hold_is_said_once(
    sealed_gateway: GatewayHarness, tmp_path: Path
) -> None:
    device = FolderDevice(tmp_path / "home", tmp_path / "Notes", "desk", sealed_gateway.url)
    _, code = await sealed_gateway.enrollment_code()
    await device.join("--code", code)
    for name in ("CON.md", "aux", "draft.", "q?.md", "ends in space "):
        device.write(f"sub/{name}", "x\n")
    device.write("fine.md", "fine\n")
    err = await device.sync()
    assert "2 new file(s) have a name Windows reserves" in err
    assert "2 new file(s) have a name ending in a dot or a space" in err
    assert '1 new file(s) have a character Windows refuses (<>:"\\|?*)' in err
    assert "CON" not in err.replace("(CON,", "") and "draft" not in err  # no names
    device.write("sub/CON.md", "edited\n")
    device.write("later.md", "new, portable\n")
    err = await device.sync()
    assert "new file(s) have" not in err  # once, not at every scan


async def test_files_the_server_refuses_for_quota_wait_listed_and_go_later(
    make_gateway: Any, tmp_path: Path
) -> None:
    gw: GatewayHarness = await make_gateway(plaintext_apps="", quota_docs=2)
    device = FolderDevice(tmp_path / "home", tmp_path / "Notes", "desk", gw.url)
    _, code = await gw.enrollment_code()
    await device.join("--code", code)
    device.write("0.md", "note 0\n")
    device.write("1.md", "note 1\n")
    await device.sync()  # the quota is counted before a write: now it is full
    device.write("later/a.md", "waits\n")
    device.write("later/b.md", "waits too\n")
    status, _, err = await device.cli("sync", str(device.folder), ok=False)
    assert status == 1, err  # not a success: two files are not on the server
    assert "2 file(s) and 0 other document(s) wait for the server" in err
    assert "document quota reached" in err
    assert "later/a.md" not in err  # names stay out of the log
    _, report, _ = await device.cli("status", str(device.folder))
    assert "waiting:    2 document(s) the server refused: " in report, report
    assert "quota" in report.split("waiting:", 1)[1].splitlines()[0], report  # its reason
    assert "\n  later/a.md\n  later/b.md" in report

    # Room made on the server (its two documents deleted there): the next sync sends what
    # waited (the quota counts what a write adds, so room for both is needed).
    db = db_name(joined_user(device), "notes")
    docs = await server_docs(gw, db)
    for doc_id, rev in docs.items():
        deleted, answer = await gw.peek("DELETE", f"/{db}/{doc_id}?rev={rev}")
        assert deleted in (200, 201), answer
    err = await device.sync()  # exits 0: every file is on the server now
    assert "the server took every file that waited" in err
    _, report, _ = await device.cli("status", str(device.folder))
    assert "waiting:" not in report
    assert len(await server_docs(gw, db)) == 2
