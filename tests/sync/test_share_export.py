"""couchgate-sync's ``share``/``shares``/``unshare`` and ``export``/``import``, as real
subprocesses against a real couchgate that requires encryption."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from encryption_plugin.shares import open_share
from tests.harness import GatewayHarness
from tests.sync.devices import FolderDevice, credentials_of

MARKER = "marker-2b71-the-harbour-at-dawn"
LINK = re.compile(r"(http://\S+)/s/([A-Za-z0-9_-]+)#([A-Za-z0-9_-]+)")


async def _copy(gateway: GatewayHarness, share_id: str) -> tuple[int, dict[str, object]]:
    status, body = await gateway.call("GET", f"/s/{share_id}/data")
    return status, body


async def test_share_reseal_list_and_unshare(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    a, _ = devices
    a.write("plan.md", f"# Plan\n\n{MARKER}\n")
    await a.sync()
    _, out, _ = await a.cli(
        "share", str(a.folder / "plan.md"), "--dir", str(a.folder), "--expires", "1d"
    )
    server, share_id, key = LINK.search(out).groups()  # type: ignore[union-attr]
    assert server == sealed_gateway.url
    status, copy = await _copy(sealed_gateway, share_id)
    assert status == 200 and open_share(key, str(copy["e2e"])).text.endswith(f"{MARKER}\n")
    records = sealed_gateway.settings.records_db
    _, stored = await sealed_gateway.peek("GET", f"/{records}/share:{share_id}")
    assert MARKER not in str(stored) and key not in str(stored)

    a.write("plan.md", "# Plan\n\nchanged\n")
    _, out, _ = await a.cli("shares", "--dir", str(a.folder), "--refresh")
    assert share_id in out and "plan.md" in out and "re-sealed 1" in out
    copy = (await _copy(sealed_gateway, share_id))[1]
    assert open_share(key, str(copy["e2e"])).text == "# Plan\n\nchanged\n"

    a.write("plan.md", "third\n")  # sharing the same file again keeps its link
    _, out, _ = await a.cli("share", str(a.folder / "plan.md"), "--dir", str(a.folder))
    assert LINK.search(out).groups()[1:] == (share_id, key)  # type: ignore[union-attr]
    assert open_share(key, str((await _copy(sealed_gateway, share_id))[1]["e2e"])).text == "third\n"

    _, out, _ = await a.cli("unshare", share_id, "--dir", str(a.folder))
    assert (await _copy(sealed_gateway, share_id))[0] == 404
    # An id beginning with "-" (base64url: ids made before new ones stopped beginning with it)
    # reaches the server, which does not know this one: not an argparse usage error (exit 2).
    code, _, err = await a.cli("unshare", "-Zz9_never-made-here", "--dir", str(a.folder), ok=False)
    assert code == 1 and "required: id" not in err and "unrecognized" not in err, err
    _, out, _ = await a.cli("shares", "--dir", str(a.folder))
    assert "no share links" in out

    code, _, err = await a.cli(
        "share", str(a.folder / "plan.md"), "--dir", str(a.folder), "--expires", "soon", ok=False
    )
    assert code == 2 and "30m, 12h or 7d" in err


async def test_export_then_import_on_another_server_a_folder_device_reads_every_file(
    make_gateway: Callable[..., Awaitable[GatewayHarness]],
    sealed_gateway: GatewayHarness,
    devices: tuple[FolderDevice, FolderDevice],
    tmp_path: Path,
) -> None:
    a, _ = devices
    a.write("one.md", "first note\n")
    a.write("deep/two.md", f"{MARKER}\n")
    a.write("photo.bin", bytes(range(256)) * 300)
    await a.sync()
    archive = tmp_path / "mine.ndjson"
    _, out, _ = await a.cli("export", str(archive), "--dir", str(a.folder))
    assert archive.is_file() and MARKER not in archive.read_text()

    other = await make_gateway(plaintext_apps="")
    moved = FolderDevice(tmp_path / "home-c", tmp_path / "Notes C", "desktop", other.url)
    _, code = await other.enrollment_code()
    await moved.join("--code", code, "--key", credentials_of(a)["key"])
    _, out, _ = await moved.cli("import", str(archive), "--dir", str(moved.folder))
    assert "imported" in out
    await moved.sync()
    assert moved.files() == a.files()
    _, out, _ = await moved.cli("import", str(archive), "--dir", str(moved.folder))
    assert "imported 0 revision(s)" in out


async def test_a_running_device_reseals_a_shared_file_when_it_changes(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    """``run`` keeps a link current by itself: a save re-seals the file under the same link."""
    import asyncio

    a, _ = devices
    a.write("plan.md", "before\n")
    await a.sync()
    _, out, _ = await a.cli("share", str(a.folder / "plan.md"), "--dir", str(a.folder))
    _, share_id, key = LINK.search(out).groups()  # type: ignore[union-attr]
    await a.run_live()
    try:
        await asyncio.sleep(1.0)  # the watcher is up
        a.write("plan.md", f"after\n{MARKER}\n")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            copy = (await _copy(sealed_gateway, share_id))[1]
            if open_share(key, str(copy["e2e"])).text == f"after\n{MARKER}\n":
                break
            assert loop.time() < deadline, "the running device never re-sealed the link"
            await asyncio.sleep(0.2)
    finally:
        await a.stop_live()
