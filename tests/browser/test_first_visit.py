"""A newcomer's first visit on a phone: ``/`` shows a page (not JSON) that leads to the demo, the
demo says what it is, opens with an invitation's code filled in, explains its pairing QR code,
and nothing on it is wider than the screen."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import screenshot_path
from tests.harness import GatewayHarness


async def _fits_the_screen(page: Page) -> None:
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the phone's screen"


async def test_first_visit_on_a_phone(gateway: GatewayHarness, browser: Browser) -> None:
    gw = gateway
    ctx = await browser.new_context(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
    )
    page = await ctx.new_page()

    # The browser's own Accept header gets the page.
    await page.goto(f"{gw.url}/")
    await expect(page.locator("h1")).to_have_text("couchgate")
    await expect(page.locator("pre")).to_contain_text(f"{gw.settings.port}/db/notes")
    await _fits_the_screen(page)
    await page.screenshot(path=screenshot_path("welcome-phone.png"), full_page=True)

    await page.click("#demo")
    await expect(page.locator("#about")).to_contain_text("encrypted on this device")
    await expect(page.locator("#signin")).to_be_visible()
    await _fits_the_screen(page)

    # An invitation's link (as `couchgate users add` prints it) fills the code in.
    _, code = await gw.enrollment_code()
    await page.goto(f"{gw.url}/demo/#enroll={code}")
    await expect(page.locator("#enroll-code")).to_have_value(code)
    await page.screenshot(path=screenshot_path("demo-signin-phone.png"), full_page=True)
    await page.click("#enroll-form button")
    await page.click("#create-key")
    await expect(page.locator("#fingerprint")).not_to_have_text("…")

    await page.click("#pair")
    await expect(page.locator("#pair-qr svg")).to_be_visible()
    await expect(page.locator("#pair-explained")).to_contain_text("encryption key")
    await _fits_the_screen(page)
    await page.screenshot(path=screenshot_path("demo-pairing-phone.png"), full_page=True)
    await ctx.close()
