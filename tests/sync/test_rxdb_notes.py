"""An RxDB notes app and a folder device (a real ``couchgate-sync``) of one account share their
notes: a note an RxDB device writes in the format of docs/notes-format.md becomes a Markdown file
in the folder, and a file written in the folder becomes a note in RxDB, sealed all the way.

RxDB runs under Node on its Dexie storage (``tests/js/rxdb.mjs``), replicating with RxDB's own
``replicateCouchDB`` through the ep1 plugin's ``sealedFetch``; its note ids are the plugin's
``idFor(path)``, as the format asks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from couchgate_sync import notes
from encryption_plugin import Keyring
from tests.harness import Device, GatewayHarness
from tests.integration.test_rxdb import rx_devices
from tests.sync.devices import FolderDevice, credentials_of, joined_user

TEXT = "# From RxDB\n\nWritten in an RxDB app ✓\n"


async def test_an_rxdb_note_becomes_a_markdown_file_and_back(
    sealed_gateway: GatewayHarness, tmp_path: Path
) -> None:
    folder = FolderDevice(tmp_path / "home", tmp_path / "Notes", "laptop", sealed_gateway.url)
    _, code = await sealed_gateway.enrollment_code()
    await folder.join("--code", code)
    folder.write("from-folder.md", "written in the folder\n")
    await folder.sync()

    creds = credentials_of(folder)
    keyring = Keyring.from_export(creds["key"], app_id="notes")
    rx_device = await sealed_gateway.new_device(
        same_user_as=Device(creds["token"], joined_user(folder), "", sealed_gateway.url),
        name="rxdb",
    )
    remote = {"url": rx_device.db_url("notes"), "token": rx_device.token, "key": creds["key"]}
    now = datetime.now(UTC)
    note = {
        "path": "Daily/from-rxdb.md",
        "text": TEXT,
        "created": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "mtime": int(now.timestamp() * 1000),
        "size": len(TEXT.encode()),
        "device": "rxdb",
    }
    output: dict[str, Any] = {}
    async with rx_devices({"a": remote}, output) as rx:
        from_folder = notes.doc_id_for("from-folder.md", keyring)
        assert await rx.sees("a", from_folder, text="written in the folder\n")
        await rx.put("a", note, natural_key=note["path"])
        await rx.step("in-sync", "a")
        await folder.sync()

    assert folder.files() == {
        "from-folder.md": b"written in the folder\n",
        "Daily/from-rxdb.md": TEXT.encode(),
    }
    assert output["e2e_errors"] == []
