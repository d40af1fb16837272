"""Joining: by a code sent by email (typed at the prompt), with the key made by the first
device; a later device of the account is refused without the key, then joins with it. Token and
key end up outside the folder, in a file only the user can read."""

from __future__ import annotations

import asyncio
import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from couchgate_sync.ignore import MARKER
from encryption_plugin import Keyring
from tests.harness import GatewayHarness
from tests.integration.test_auth import Inbox, smtp, smtp_settings  # noqa: F401  (fixture)
from tests.sync.devices import FolderDevice, credentials_of
from tests.sync.test_folder_sync import until
from tests.upstreams import free_port

pytestmark = pytest.mark.parametrize("gateway_upstream", ["embedded"], indirect=True)


async def _join_by_email(
    device: FolderDevice, inbox: Inbox, address: str, *extra: str
) -> tuple[int, str, str]:
    inbox.messages.clear()  # the code asked for now, not an earlier one
    proc = await device.start(
        "join",
        device.server,
        str(device.folder),
        "--device",
        device.name,
        "--email",
        address,
        *extra,
        stdin=asyncio.subprocess.PIPE,
    )
    code = await inbox.code_for(address)
    out, err = await asyncio.wait_for(proc.communicate(f"{code}\n".encode()), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_join_by_email_code_first_device_makes_the_key(
    make_gateway: Any,
    smtp: tuple[Inbox, int],  # noqa: F811
    tmp_path: Path,
) -> None:
    inbox, port = smtp
    gw: GatewayHarness = await make_gateway(
        plaintext_apps="", registration="open", **smtp_settings(port)
    )
    first = FolderDevice(tmp_path / "home-1", tmp_path / "One", "desk", gw.url)
    code, out, err = await _join_by_email(first, inbox, "ana@example.org")
    assert code == 0, err
    creds = credentials_of(first)
    assert f"\n{creds['key']}\n" in out  # the export string, shown once, for other devices
    assert "\u2580" in out or "\u2584" in out  # and its QR code, drawn in half blocks
    assert Keyring.from_export(creds["key"], app_id="notes").fingerprint() in out
    (cred_file,) = (first.home / "config" / "credentials").glob("*.json")
    assert stat.S_IMODE(cred_file.stat().st_mode) == 0o600
    # Nothing of the client in the folder but its marker (no credentials, no state).
    assert [p.name for p in first.folder.iterdir()] == [MARKER]
    first.write("a.md", "hello\n")
    await first.sync()

    second = FolderDevice(tmp_path / "home-2", tmp_path / "Two", "tablet", gw.url)
    code, _, err = await _join_by_email(second, inbox, "ana@example.org")
    assert code == 1 and "already has notes data" in err
    code, _, err = await _join_by_email(second, inbox, "ana@example.org", "--key", creds["key"])
    assert code == 0, err
    await second.sync()
    assert second.files() == {"a.md": b"hello\n"}


async def test_a_full_quota_is_said_in_words(make_gateway: Any, tmp_path: Path) -> None:
    gw: GatewayHarness = await make_gateway(plaintext_apps="", quota_docs=2)
    device = FolderDevice(tmp_path / "home", tmp_path / "Notes", "desk", gw.url)
    _, code = await gw.enrollment_code()
    await device.join("--code", code)
    for n in range(2):
        device.write(f"{n}.md", f"note {n}\n")
    await device.sync()  # the quota is counted before a write: now it is full
    device.write("pending.md", "not yet\n")
    _, report, _ = await device.cli("status", str(device.folder))
    assert "files:      2 synced" in report
    assert "pending:    1 local change(s) not yet recorded, 0 document(s) not yet uploaded" in (
        report
    )
    assert "conflicts:  0 unresolved" in report
    assert "storage:    2 documents" in report
    (device.folder / "pending.md").unlink()
    device.write("one more.md", "refused\n")
    status, _, err = await device.cli("sync", str(device.folder), ok=False)
    assert status == 1
    # Refused per document, as CouchDB refuses a document in _bulk_docs; the file waits, and
    # the sync says so with the server's reason.
    assert "1 file(s) and 0 other document(s) wait for the server (document quota reached" in err
    assert "1 document(s) not synced: document quota reached: 2 documents" in err


async def test_status_shows_the_quota_as_the_gateway_counts_it(
    make_gateway: Any, tmp_path: Path
) -> None:
    gw: GatewayHarness = await make_gateway(plaintext_apps="", quota_docs=40, quota_bytes=5_000_000)
    device = FolderDevice(tmp_path / "home", tmp_path / "Notes", "desk", gw.url)
    _, code = await gw.enrollment_code()
    await device.join("--code", code)
    for n in range(3):
        device.write(f"{n}.md", f"note {n}\n" * 200)
    await device.sync()
    _, report, _ = await device.cli("status", str(device.folder))
    found = re.search(
        r"^quota:      (\d+) of 40 documents; (\d+) of 5000000 bytes$", report, re.MULTILINE
    )
    assert found is not None, report
    # The figures the gateway's quota check counts: the upstream's, plus the checkpoints.
    assert int(found[1]) == 3
    assert 3 * 1_200 < int(found[2]) < 5_000_000

    unlimited: GatewayHarness = await make_gateway(plaintext_apps="")
    other = FolderDevice(tmp_path / "home-2", tmp_path / "Two", "desk", unlimited.url)
    _, code = await unlimited.enrollment_code()
    await other.join("--code", code)
    await other.sync()
    _, report, _ = await other.cli("status", str(other.folder))
    assert "quota:      none" in report


async def test_an_unreachable_server_is_said_in_words_and_run_keeps_trying(
    make_gateway: Any, tmp_path: Path
) -> None:
    gw: GatewayHarness = await make_gateway(plaintext_apps="")
    device = FolderDevice(tmp_path / "home", tmp_path / "Notes", "desk", gw.url)
    _, code = await gw.enrollment_code()
    await device.join("--code", code)
    (settings,) = (device.home / "config" / "folders").glob("*.json")
    saved = json.loads(settings.read_text())
    settings.write_text(json.dumps({**saved, "server": f"http://127.0.0.1:{free_port()}"}))
    device.write("offline.md", "written offline\n")
    status, _, err = await device.cli("sync", str(device.folder), ok=False)
    assert status == 1 and "the server is unreachable" in err

    proc = await device.start("run", str(device.folder))
    assert proc.stderr is not None
    line = await asyncio.wait_for(proc.stderr.readline(), 30)
    while b"unreachable" not in line:
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
    assert b"retrying in" in line and proc.returncode is None
    proc.terminate()
    await proc.wait()

    settings.write_text(json.dumps(saved))  # back online: the offline edit goes up
    await device.sync()
    other = FolderDevice(tmp_path / "home-2", tmp_path / "Other", "laptop", gw.url)
    await other.join("--pair", await device.pairing_link())
    await other.sync()
    assert other.files() == {"offline.md": b"written offline\n"}


async def test_live_editing_stays_within_a_modest_request_rate(
    make_gateway: Any, tmp_path: Path
) -> None:
    """A save costs a few requests, not a dozen: a device that edits steadily stays under the
    gateway's per-device rate limit instead of being told to slow down."""
    gw: GatewayHarness = await make_gateway(plaintext_apps="", device_requests_per_minute=150)
    a = FolderDevice(tmp_path / "home-a", tmp_path / "A", "laptop", gw.url)
    b = FolderDevice(tmp_path / "home-b", tmp_path / "B", "phone", gw.url)
    _, code = await gw.enrollment_code()
    await a.join("--code", code)
    await b.join("--pair", await a.pairing_link())
    await a.run_live()
    await b.run_live()
    try:
        for n in range(15):
            a.write("draft.md", f"version {n}\n")

            def arrived(n: int = n) -> bool:
                return b.files().get("draft.md") == f"version {n}\n".encode()

            await until(arrived)
    finally:
        await a.stop_live()
        await b.stop_live()
    for device in (a, b):
        log = (device.home / "run.log").read_text()
        assert "429" not in log and "slow down" not in log, log
