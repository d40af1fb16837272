"""The self-service page in a browser: sign in by enrollment code, see devices and the server's
copy of an app, delete that copy."""

from __future__ import annotations

from playwright.async_api import Browser, Dialog, expect

from gateway import keys
from tests.browser.conftest import screenshot_path
from tests.harness import GatewayHarness


async def test_account_page(gateway: GatewayHarness, browser: Browser) -> None:
    laptop = await gateway.new_device(name="Laptop")
    assert (await gateway.call("PUT", "/db/notes/", device=laptop))[0] == 201
    assert (await gateway.call("PUT", "/db/notes/n1", device=laptop, json={"e2e": "x"}))[0] == 201
    status, link = await gateway.call("POST", "/auth/link", device=laptop)
    assert status == 201

    ctx = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = await ctx.new_page()

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.on("dialog", accept)
    await page.goto(f"{gateway.url}/account")
    # A link code is an enrollment-like single-use code; the form takes enrollment codes only.
    await page.fill("#enroll-code", link["code"])
    await page.click("#enroll-form button")
    await expect(page.locator("#problem")).to_contain_text("wrong, used or expired")

    code, _ = await gateway.app[keys.IDENTITIES].grants.create("enroll", laptop.user)
    await page.fill("#enroll-code", code)
    await page.click("#enroll-form button")
    await expect(page.locator("#apps")).to_contain_text("notes")
    await expect(page.locator("#devices")).to_contain_text("Account page (this device)")
    await expect(page.locator("#devices")).to_contain_text("Laptop")
    await page.screenshot(path=screenshot_path("account.png"), full_page=True)
    await ctx.close()


async def test_account_page_deletes_remote_copy(gateway: GatewayHarness, browser: Browser) -> None:
    laptop = await gateway.new_device(name="Laptop")
    assert (await gateway.call("PUT", "/db/notes/", device=laptop))[0] == 201
    ctx = await browser.new_context()
    page = await ctx.new_page()

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.on("dialog", accept)
    await page.goto(f"{gateway.url}/demo/")
    session = {"token": laptop.token, "user": laptop.user, "device": laptop.device}
    await page.evaluate("s => localStorage.setItem('couchgate-demo', JSON.stringify(s))", session)
    await page.goto(f"{gateway.url}/account")
    await expect(page.locator("#devices")).to_contain_text("Laptop (this device)")
    await page.click("#apps button")
    await expect(page.locator("#notice")).to_have_text("Deleted the server's copy of notes.")
    status, _ = await gateway.peek("GET", f"/{gateway.upstream_db(laptop, 'notes')}")
    assert status == 404
    await ctx.close()
