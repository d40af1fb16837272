"""One note format, two clients: the demo web app (PouchDB under Chromium) and a folder device
on one account. A note written in the browser appears as a Markdown file; a file saved in the
folder appears in the browser; an edit of the browser's note in the folder reaches the browser
as an edit of the same note, live. And the browser downloads no attachment of the folder's
large and binary files (their chunks, their kept versions) until someone opens one.

Run on the embedded store only: the format does not depend on the upstream, and a browser per
upstream would triple the cost of the module for nothing the other tests do not cover."""

from __future__ import annotations

import random
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Request, expect

from couchgate_sync.ignore import TEMP_PREFIX
from encryption_plugin import Keyring, open_doc
from encryption_plugin.derivations import path_id
from tests.browser.conftest import browser  # noqa: F401  (the fixture)
from tests.harness import GatewayHarness
from tests.sync.devices import FolderDevice, credentials_of, joined_user
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
    assert await notes.locator(":scope > li").count() == 2

    # An empty folder's document and a renamed file's link are nothing the demo lists twice.
    (folder_device.folder / "Empty folder").mkdir()
    (folder_device.folder / "Lists").mkdir()
    (folder_device.folder / "Shopping.md").rename(folder_device.folder / "Lists/Shopping.md")
    folder_device.write("After.md", f"after {marker}\n")
    await expect(notes).to_contain_text(f"after {marker}", timeout=SYNC_TIMEOUT_MS)
    await expect(notes.locator(":scope > li")).to_have_count(3, timeout=SYNC_TIMEOUT_MS)
    await expect(notes).to_contain_text(f"oat milk {marker}")
    await context.close()


# An attachment's GET: /db/notes/<document id>/<stored name: 32 hex digits>
ATTACHMENT_GET = re.compile(r"/db/notes/[^/?_][^/?]*/[0-9a-f]{32}(\?|$)")


@dataclass
class Received:
    """What the page received from the app's database: every response's bytes, and the
    attachment GETs among them."""

    bytes: int = 0
    attachments: list[str] = field(default_factory=list)

    async def count(self, request: Request) -> None:
        if "/db/notes" not in request.url:
            return
        sizes = await request.sizes()
        self.bytes += sizes["responseBodySize"] + sizes["responseHeadersSize"]
        if ATTACHMENT_GET.search(request.url):
            self.attachments.append(request.url)


async def _downloaded(page: Page, item: Any) -> bytes:
    """Open an item (its first Open/Show button) and save what its link offers."""
    await item.get_by_role("button").first.click()
    link = item.locator("a[download]").first
    async with page.expect_download() as info:
        await link.click()
    path = await (await info.value).path()
    return path.read_bytes()


@pytest.mark.parametrize("gateway_upstream", ["embedded"], indirect=True)
async def test_the_demo_fetches_attachments_only_for_what_it_opens(
    sealed_gateway: GatewayHarness,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    gw = sealed_gateway
    device = FolderDevice(tmp_path / "home", tmp_path / "Vault", "laptop", gw.url)
    _, code = await gw.enrollment_code()
    await device.join("--code", code)
    # A file in chunks (over 4 MiB), a binary file and a note, each edited once: the account
    # then holds the chunks of both versions of the large file and a kept version of each.
    rng = random.Random(24)
    large, photo = bytearray(rng.randbytes(6 << 20)), rng.randbytes(150_000)
    device.write("Media/large.bin", bytes(large))
    device.write("Media/photo.jpg", photo)
    device.write("Note.md", "the first draft\n")
    await device.sync()
    large[3 << 20 : (3 << 20) + 64] = bytes(64)
    device.write("Media/large.bin", bytes(large))
    device.write("Media/photo.jpg", photo[::-1])
    device.write("Note.md", "the second draft\n")
    await device.sync()

    db = f"u{joined_user(device)}-notes"
    status, stored = await gw.peek("GET", f"/{db}/_all_docs?include_docs=true")
    assert status == 200, stored
    docs = {row["id"]: row["doc"] for row in stored["rows"] if not row["id"].startswith("_")}
    stored_bytes = sum(
        a["length"] for d in docs.values() for a in d.get("_attachments", {}).values()
    )
    assert stored_bytes > 6 << 20  # the chunks of two versions and two photos
    keyring = Keyring.from_export(credentials_of(device)["key"], app_id="notes")
    large_doc = open_doc(docs[path_id("Media/large.bin", keyring)], keyring)
    chunks = len(large_doc["chunks"])

    context = await browser.new_context()
    page = await context.new_page()
    received = Received()
    counting: list[Any] = []
    page.on("requestfinished", lambda request: counting.append(received.count(request)))
    await page.goto(await device.pairing_link())
    notes, files = page.locator("#note-list"), page.locator("#file-list")
    await expect(notes).to_contain_text("the second draft", timeout=SYNC_TIMEOUT_MS)
    await expect(files.locator(":scope > li")).to_have_count(2, timeout=SYNC_TIMEOUT_MS)
    await expect(page.locator("#sync-state")).to_have_text("Synced", timeout=SYNC_TIMEOUT_MS)
    for pending in counting:
        await pending
    counting.clear()
    # The first sync read every document's body and not one attachment.
    assert received.attachments == []
    assert received.bytes < stored_bytes // 50, (received.bytes, stored_bytes)
    first_sync_bytes = received.bytes

    # A note's kept version is text the page already holds: showing it fetches nothing.
    note = notes.locator("li", has_text="the second draft")
    await note.locator("summary").click()
    await note.get_by_role("button", name="Show").click()
    await expect(note.locator("pre")).to_have_text("the first draft\n")

    # Opening the large file fetches its chunks, once each; the photo's old version, its one
    # attachment; the chunks only the large file's old version lists are never fetched.
    large_item = files.locator("li[data-path='Media/large.bin']")
    assert await _downloaded(page, large_item) == bytes(large)
    photo_item = files.locator("li[data-path='Media/photo.jpg']")
    await photo_item.locator("summary").click()
    assert await _downloaded(page, photo_item.locator(".history li").first) == photo
    for pending in counting:
        await pending
    assert len(received.attachments) == chunks + 1, received.attachments
    assert len(set(received.attachments)) == chunks + 1
    assert received.bytes - first_sync_bytes < len(large) + len(photo) + (64 << 10) * chunks
    await context.close()
