"""One note format, two clients: the demo web app (PouchDB under Chromium) and a folder device
on one account. A note written in the browser appears as a Markdown file; a file saved in the
folder appears in the browser; an edit of the browser's note in the folder reaches the browser
as an edit of the same note, live.

Run on the embedded store only: the format does not depend on the upstream, and a browser per
upstream would triple the cost of the module for nothing the other tests do not cover."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from couchgate_sync.ignore import TEMP_PREFIX
from tests.browser.conftest import browser  # noqa: F401  (the fixture)
from tests.harness import GatewayHarness
from tests.sync.devices import FolderDevice
from tests.sync.test_folder_sync import until

SYNC_TIMEOUT_MS = 30_000


@pytest.mark.parametrize("gateway_upstream", ["embedded"], indirect=True)
async def test_a_browser_note_is_a_file_and_a_file_is_a_browser_note(
    sealed_gateway: GatewayHarness,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    work = tmp_path
    folder_device = FolderDevice(work / "home", work / "Vault", "laptop", sealed_gateway.url)
    _, code = await sealed_gateway.enrollment_code()
    await folder_device.join("--code", code)
    link = await folder_device.pairing_link()
    await folder_device.run_live()
    try:
        await _both_ways(folder_device, browser, link)
    finally:
        await folder_device.stop_live()


async def _both_ways(folder_device: FolderDevice, chromium: Browser, link: str) -> None:
    context = await chromium.new_context()
    page = await context.new_page()
    await page.goto(link)
    notes = page.locator("#note-list")
    await expect(page.locator("#sync-state")).to_have_text("Synced", timeout=SYNC_TIMEOUT_MS)

    marker = secrets.token_hex(6)
    await page.fill("#note-text", f"from the browser {marker}")
    await page.click("#note-form button[type=submit]")

    def written() -> list[str]:  # a note being written is a temporary file for a moment
        return [
            k
            for k, v in folder_device.files().items()
            if marker.encode() in v and not k.startswith(TEMP_PREFIX)
        ]

    await until(lambda: bool(written()))
    (name,) = written()
    assert name.endswith(".md") and "/" not in name
    assert folder_device.files()[name] == f"from the browser {marker}".encode()

    folder_device.write("Shopping.md", f"oat milk {marker}\n")
    await expect(notes).to_contain_text(f"oat milk {marker}", timeout=SYNC_TIMEOUT_MS)

    (folder_device.folder / name).write_text(f"edited in the folder {marker}")
    await expect(notes).to_contain_text(f"edited in the folder {marker}", timeout=SYNC_TIMEOUT_MS)
    await expect(notes).not_to_contain_text(f"from the browser {marker}")
    assert await notes.locator("li").count() == 2

    # An empty folder's document and a renamed file's link are nothing the demo lists twice.
    (folder_device.folder / "Empty folder").mkdir()
    (folder_device.folder / "Lists").mkdir()
    (folder_device.folder / "Shopping.md").rename(folder_device.folder / "Lists/Shopping.md")
    folder_device.write("After.md", f"after {marker}\n")
    await expect(notes).to_contain_text(f"after {marker}", timeout=SYNC_TIMEOUT_MS)
    await expect(notes.locator("li")).to_have_count(3, timeout=SYNC_TIMEOUT_MS)
    await expect(notes).to_contain_text(f"oat milk {marker}")
    await context.close()
