"""Two browser contexts as two devices of one person: sign in, pair by QR link, live sync.

Then the server is checked for what it holds (ciphertext only), and the admin revokes the second
device from the dashboard: its page must say so in words.
"""

from __future__ import annotations

import json
import secrets
from urllib.parse import quote

from playwright.async_api import Browser, Dialog, Page, expect

import encryption_plugin as ep
from tests.browser.conftest import ADMIN_PASSWORD, screenshot_path
from tests.harness import GatewayHarness

SYNC_TIMEOUT_MS = 20_000


async def _session_of(page: Page) -> dict[str, str]:
    raw = await page.evaluate("localStorage.getItem('couchgate-demo')")
    assert isinstance(raw, str)
    data = json.loads(raw)
    assert isinstance(data, dict)
    return data


async def _add_note(page: Page, text: str) -> None:
    await page.fill("#note-text", text)
    await page.click("#note-form button[type=submit]")


async def admin_sign_in(page: Page, base: str) -> None:
    await page.goto(f"{base}/admin/")
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("form[action='/admin/login'] button")
    await expect(page.locator("#users")).to_be_visible()


async def test_two_devices_pair_and_sync_live(
    admin_gateway: GatewayHarness, browser: Browser
) -> None:
    gw = admin_gateway
    _, code = await gw.enrollment_code()
    laptop_ctx = await browser.new_context(viewport={"width": 900, "height": 900})
    phone_ctx = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    laptop, phone = await laptop_ctx.new_page(), await phone_ctx.new_page()

    # Device 1 signs in with the admin's enrollment code and makes the key.
    await laptop.goto(f"{gw.url}/demo/")
    await laptop.fill("#enroll-code", code)
    await laptop.fill("#device-name", "Laptop")
    await laptop.click("#enroll-form button")
    await laptop.click("#create-key")
    fingerprint = laptop.locator("#fingerprint")
    await expect(fingerprint).not_to_have_text("…")
    await _add_note(laptop, "Buy oat milk")
    await expect(laptop.locator("#sync-state")).to_have_text("Synced", timeout=SYNC_TIMEOUT_MS)

    # It shows a QR code with the link code and the key; device 2 opens that link.
    await laptop.click("#pair")
    await expect(laptop.locator("#pair-qr svg")).to_be_visible()
    link = await laptop.input_value("#pair-link")
    assert link.startswith(f"{gw.url}/demo/#pair=") and "key=ep1k" in link
    await laptop.screenshot(path=screenshot_path("demo-pairing.png"), full_page=True)
    await phone.goto(link)
    await expect(phone.locator("#fingerprint")).to_have_text(await fingerprint.inner_text())
    assert "#" not in phone.url, "the key must leave the address bar"
    notes_phone = phone.locator("#note-list")
    await expect(notes_phone).to_contain_text("Buy oat milk", timeout=SYNC_TIMEOUT_MS)

    # Live both ways.
    marker = f"marker-{secrets.token_hex(8)}"
    await _add_note(phone, f"Secret plan {marker}")
    await expect(laptop.locator("#note-list")).to_contain_text(marker, timeout=SYNC_TIMEOUT_MS)
    await _add_note(laptop, "Call the plumber")
    await expect(notes_phone).to_contain_text("Call the plumber", timeout=SYNC_TIMEOUT_MS)
    await laptop.screenshot(path=screenshot_path("demo-notes.png"), full_page=True)
    await phone.screenshot(path=screenshot_path("demo-phone.png"), full_page=True)

    # The upstream holds ciphertext only.
    laptop_session, phone_session = await _session_of(laptop), await _session_of(phone)
    assert laptop_session["user"] == phone_session["user"]
    db = f"u{laptop_session['user']}-notes"
    status, stored = await gw.peek("GET", f"/{db}/_all_docs?include_docs=true")
    assert status == 200, stored
    docs = [row["doc"] for row in stored["rows"] if not row["id"].startswith("_")]
    assert len(docs) == 3
    for doc in docs:
        assert set(doc) <= {"_id", "_rev", "e2e"}, doc
        assert doc["e2e"].startswith("ep1.")
    dump = json.dumps(stored)
    assert marker not in dump and "oat milk" not in dump and "plumber" not in dump

    # The admin revokes the phone: its sync stops, and its page says why.
    admin_ctx = await browser.new_context()
    admin = await admin_ctx.new_page()
    await admin_sign_in(admin, gw.url)
    await admin.goto(f"{gw.url}/admin/users/{phone_session['user']}")
    row = admin.locator(f"tr[data-device='{phone_session['device']}']")
    await row.locator("button").click()
    await expect(admin.locator(".notice")).to_have_text("Device revoked.")
    problem = phone.locator("#problem")
    await expect(problem).to_contain_text(
        "This device was signed out (revoked).", timeout=SYNC_TIMEOUT_MS
    )
    await expect(phone.locator("#sync-state")).to_have_text("Sync stopped")
    await phone.screenshot(path=screenshot_path("demo-revoked.png"), full_page=True)

    # The laptop carries on.
    await _add_note(laptop, "Still syncing")
    await expect(laptop.locator("#sync-state")).to_have_text("Synced", timeout=SYNC_TIMEOUT_MS)
    await expect(laptop.locator("#problem")).to_be_hidden()
    for ctx in (laptop_ctx, phone_ctx, admin_ctx):
        await ctx.close()


async def test_a_pairing_link_asks_before_replacing_a_signed_in_session(
    admin_gateway: GatewayHarness, browser: Browser
) -> None:
    """A link someone else made must not silently move a signed-in device to their account."""
    gw = admin_gateway
    _, code = await gw.enrollment_code()
    ctx = await browser.new_context()
    page = await ctx.new_page()
    await page.goto(f"{gw.url}/demo/")
    await page.fill("#enroll-code", code)
    await page.click("#enroll-form button")
    await page.click("#create-key")
    fingerprint = page.locator("#fingerprint")
    await expect(fingerprint).not_to_have_text("…")
    own_fingerprint, own = await fingerprint.inner_text(), await _session_of(page)

    other = await gw.new_device()
    status, link_code = await gw.call("POST", "/auth/link", device=other)
    assert status == 201, link_code
    other_key = ep.Keyring.generate("notes")
    link = (
        f"{gw.url}/demo/#pair={quote(link_code['code'], safe='')}"
        f"&key={quote(other_key.export(), safe='')}"
    )
    messages: list[str] = []

    async def answer(dialog: Dialog, accept: bool) -> None:
        messages.append(dialog.message)
        await (dialog.accept() if accept else dialog.dismiss())

    # Declined: nothing changes, and the page says the link was not used.
    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    await page.goto("about:blank")
    await page.goto(link)
    await expect(page.locator("#problem")).to_contain_text("pairing link was not used")
    await expect(fingerprint).to_have_text(own_fingerprint)
    assert await _session_of(page) == own
    assert len(messages) == 1 and other_key.fingerprint() in messages[0]
    assert "sign this device out of its current account" in messages[0]

    # Accepted: the device joins the other account, with its key.
    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    await page.goto("about:blank")
    await page.goto(link)
    await expect(fingerprint).to_have_text(other_key.fingerprint())
    assert (await _session_of(page))["user"] == other.user
    assert len(messages) == 2
    await ctx.close()
