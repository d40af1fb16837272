"""Share links in a real browser with no account: the note opens with the fragment's key, its
Markdown renders inert, dead links of every kind look alike, and the key reaches no server."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, Request, expect

from encryption_plugin.shares import SharedNote, new_share_key, open_share, seal_share
from gateway import keys
from gateway.shares import SHARES
from tests.browser.conftest import screenshot_path
from tests.browser.test_demo_sync import admin_sign_in
from tests.harness import Device, GatewayHarness

MARKER = "marker-55d1e0-meet-at-the-lighthouse"
HOSTILE = """# Plan

Meet at the lighthouse.

<script>window.__pwned = 'script'</script>
<img src="x" onerror="window.__pwned = 'img'">
[click me](javascript:window.__pwned='link')
<a href="javascript:window.__pwned='a'" id="raw-link">raw</a>
<div onclick="window.__pwned='div'" id="clicky">click</div>
"""


async def _owner(gateway: GatewayHarness) -> Device:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes/", device=device))[0] == 201
    return device


async def _share(gateway: GatewayHarness, device: Device, key: str, text: str) -> str:
    envelope = seal_share(key, SharedNote("plan.md", text))
    status, body = await gateway.call(
        "POST", "/shares/api", device=device, json={"e2e": envelope, "app": "notes"}
    )
    assert status == 201, body
    return str(body["id"])


async def test_a_link_opens_the_note_and_its_key_reaches_no_server(
    gateway: GatewayHarness, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    owner = await _owner(gateway)
    key = new_share_key()
    share_id = await _share(gateway, owner, key, f"# Plan\n\n**{MARKER}**")

    ctx = await browser.new_context()  # fresh: no account, no storage
    page = await ctx.new_page()
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request))
    await page.goto(f"{gateway.url}/s/{share_id}#{key}")
    await expect(page.locator("#note-body strong")).to_have_text(MARKER)
    await expect(page.locator("#note-name")).to_have_text("plan.md")
    await expect(page.locator("#note-expiry")).to_contain_text("expires")
    await page.screenshot(path=screenshot_path("share-link.png"), full_page=True)

    assert {r.url.split("#")[0].removeprefix(gateway.url) for r in sent} >= {
        f"/s/{share_id}",
        f"/s/{share_id}/data",
        "/shares/static/share.js",
    }
    for request in sent:
        assert request.url.startswith(gateway.url), request.url  # nothing from another origin
        headers = await request.all_headers()
        assert key not in request.url.split("#")[0] and key not in str(headers)
    # The gateway's own log and its access log: no key, and not even the link's id.
    assert key not in caplog.text and share_id not in caplog.text
    status, everything = await gateway.peek(
        "GET", f"/{gateway.settings.records_db}/_all_docs?include_docs=true"
    )
    assert status == 200 and key not in str(everything) and MARKER not in str(everything)
    await ctx.close()


async def test_hostile_markdown_renders_inert(gateway: GatewayHarness, browser: Browser) -> None:
    owner = await _owner(gateway)
    key = new_share_key()
    share_id = await _share(gateway, owner, key, HOSTILE)
    ctx = await browser.new_context()
    page = await ctx.new_page()
    await page.goto(f"{gateway.url}/s/{share_id}#{key}")
    await expect(page.locator("#note-body")).to_contain_text("Meet at the lighthouse.")
    body = page.locator("#note-body")
    assert await body.locator("script, img, iframe").count() == 0
    assert await body.locator("[onerror], [onclick], [href^='javascript' i]").count() == 0
    await body.get_by_text("click me").click()
    await body.get_by_text("raw").click()
    await page.locator("#clicky").click()
    assert await page.evaluate("window.__pwned") is None
    assert page.url.endswith(f"#{key}")  # no link led anywhere
    await ctx.close()


async def test_expired_revoked_and_unknown_links_show_the_same_page(
    gateway: GatewayHarness, browser: Browser
) -> None:
    owner = await _owner(gateway)
    key = new_share_key()
    revoked = await _share(gateway, owner, key, MARKER)
    assert (await gateway.call("DELETE", f"/shares/api/{revoked}", device=owner))[0] == 200
    expired = await gateway.app[SHARES].create(
        owner.user, "notes", seal_share(key, SharedNote("a", MARKER)), time.time() - 1, False
    )
    ctx = await browser.new_context()
    page = await ctx.new_page()
    seen = []
    for share_id in (revoked, expired.id, "never-issued-0123456789"):
        await page.goto(f"{gateway.url}/s/{share_id}#{key}")
        await expect(page.locator("body")).to_have_attribute("data-state", "dead")
        seen.append(await page.locator("main").inner_text())
    assert seen[0] == seen[1] == seen[2]
    assert "not available" in seen[0] and MARKER not in seen[0]
    await ctx.close()


async def test_account_page_lists_and_revokes_links_and_the_dashboard_counts_them(
    admin_gateway: GatewayHarness, browser: Browser
) -> None:
    gateway = admin_gateway
    owner = await _owner(gateway)
    key = new_share_key()
    kept = await _share(gateway, owner, key, MARKER)
    revoked = await _share(gateway, owner, key, MARKER)

    ctx = await browser.new_context()
    page = await ctx.new_page()
    await admin_sign_in(page, gateway.url)
    row = page.locator("#users tr", has=page.locator(f"a[href='/admin/users/{owner.user}']"))
    await expect(row.locator("td").nth(5)).to_have_text("2")

    code, _ = await gateway.app[keys.IDENTITIES].grants.create("enroll", owner.user)
    await page.goto(f"{gateway.url}/account")
    await page.fill("#enroll-code", code)
    await page.click("#enroll-form button")
    await expect(page.locator("#shares tr")).to_have_count(2)
    await page.locator(f"#shares tr[data-share='{revoked}'] button").click()
    await expect(page.locator("#shares tr")).to_have_count(1)
    await expect(page.locator(f"#shares tr[data-share='{kept}']")).to_be_visible()
    assert (await gateway.call("GET", f"/s/{revoked}/data"))[0] == 404
    assert (await gateway.call("GET", f"/s/{kept}/data"))[0] == 200
    await ctx.close()


async def test_the_demo_share_button_makes_a_link_a_stranger_can_read(
    gateway: GatewayHarness, browser: Browser
) -> None:
    _, code = await gateway.enrollment_code()
    ctx = await browser.new_context()
    page = await ctx.new_page()
    await page.goto(f"{gateway.url}/demo/")
    await page.fill("#enroll-code", code)
    await page.click("#enroll-form button")
    await page.click("#create-key")
    await page.fill("#note-text", f"Shared plan\n\n*{MARKER}*")
    await page.click("#note-form button[type=submit]")
    await expect(page.locator("#sync-state")).to_have_text("Synced", timeout=30_000)
    await page.locator("#note-list li", has_text=MARKER).get_by_role("button", name="Share").click()
    link = await page.locator("#note-list .share-link").input_value()
    assert link.startswith(f"{gateway.url}/s/") and "#" in link
    share_id, key = link.removeprefix(f"{gateway.url}/s/").split("#")
    await ctx.close()

    stranger = await browser.new_context()
    view = await stranger.new_page()
    await view.goto(link)
    await expect(view.locator("#note-body em")).to_have_text(MARKER)
    await expect(view.locator("#note-name")).to_have_text("Shared plan")
    _, stored = await gateway.peek("GET", f"/{gateway.settings.records_db}/share:{share_id}")
    assert MARKER not in str(stored) and key not in str(stored)
    # Sealed by the browser's bundle, opened by Python's encryption_plugin: one format.
    assert MARKER in open_share(key, stored["e2e"]).text
    await stranger.close()


async def test_the_account_page_downloads_an_export(
    gateway: GatewayHarness, browser: Browser
) -> None:
    owner = await _owner(gateway)
    envelope = seal_share(new_share_key(), SharedNote("x", MARKER))  # any ep1-shaped value
    status, _ = await gateway.call("PUT", "/db/notes/n1", device=owner, json={"e2e": envelope})
    assert status == 201
    code, _ = await gateway.app[keys.IDENTITIES].grants.create("enroll", owner.user)
    ctx = await browser.new_context(accept_downloads=True)
    page = await ctx.new_page()
    await page.goto(f"{gateway.url}/account")
    await page.fill("#enroll-code", code)
    await page.click("#enroll-form button")
    async with page.expect_download() as download_info:
        await page.click("#export")
    download = await download_info.value
    text = await asyncio.to_thread(Path(await download.path()).read_text)
    lines = text.splitlines()
    assert json.loads(lines[0])["type"] == "manifest"
    assert json.loads(lines[-1]) == {"type": "end", "docs": {"notes": 1}}
    assert json.loads(lines[1])["doc"]["e2e"] == envelope
    await ctx.close()
