"""The admin dashboard in a real browser: sign in, live figures, find a user by email, delete an
app's data through the confirmation step, create an invitation; and forged posts refused."""

from __future__ import annotations

import re

import aiohttp
from playwright.async_api import Browser, expect

from tests.browser.conftest import ADMIN_PASSWORD, screenshot_path
from tests.browser.test_demo_sync import admin_sign_in
from tests.harness import GatewayHarness


async def test_sign_in_find_and_delete_app_data(
    admin_gateway: GatewayHarness, browser: Browser
) -> None:
    gw = admin_gateway
    ada = await gw.new_device("ada@example.org", name="Ada's laptop")
    assert (await gw.call("PUT", "/db/notes/", device=ada))[0] == 201
    status, _ = await gw.call(
        "POST",
        "/db/notes/_bulk_docs",
        device=ada,
        json={"docs": [{"_id": f"n{i}", "e2e": "ep1.x.y.z"} for i in range(3)]},
    )
    assert status == 201
    await gw.new_device("grace@example.org")

    ctx = await browser.new_context(viewport={"width": 1000, "height": 800})
    page = await ctx.new_page()
    await page.goto(f"{gw.url}/admin/")
    assert page.url.endswith("/admin/login")
    await page.fill("#password", "not the password")
    await page.click("form[action='/admin/login'] button")
    await expect(page.locator(".error")).to_have_text("That is not the admin password.")
    await admin_sign_in(page, gw.url)
    await expect(page.locator("#fig-users")).to_have_text("2")
    await expect(page.locator("#fig-devices")).to_have_text("2")
    await expect(page.locator("#users")).to_contain_text("notes (3,")
    await page.screenshot(path=screenshot_path("dashboard-users.png"), full_page=True)

    # Find by email, through the keyed HMAC.
    await page.fill("input[name=email]", "nobody@example.org")
    await page.click("form[action='/admin/find'] button")
    await expect(page.locator(".error")).to_have_text("No account has that address.")
    await page.fill("input[name=email]", "Ada@Example.org")
    await page.click("form[action='/admin/find'] button")
    await expect(page).to_have_url(re.compile(f"/admin/users/{ada.user}$"))
    await expect(page.locator("#devices")).to_contain_text("Ada's laptop")
    await expect(page.locator("tr[data-app=notes]")).to_contain_text("3")
    await page.screenshot(path=screenshot_path("dashboard-user.png"), full_page=True)

    # Deleting app data asks first.
    await page.click("tr[data-app=notes] a")
    await expect(page.locator("h1")).to_contain_text("Delete the data of")
    await page.screenshot(path=screenshot_path("dashboard-confirm.png"), full_page=True)
    await page.click("#confirm")
    await expect(page.locator(".notice")).to_have_text("App data deleted.")
    await expect(page.locator("#apps")).to_contain_text("No app data.")
    status, _ = await gw.peek("GET", f"/{gw.upstream_db(ada, 'notes')}")
    assert status == 404

    # An invitation: the code as text; without public_url no link (see test_invitation_links).
    await page.goto(f"{gw.url}/admin/invitations")
    await page.click("form[action='/admin/invitations'] button")
    code = (await page.inner_text("#enrollment-code")).strip()
    await expect(page.locator("#no-link")).to_be_visible()
    await page.screenshot(path=screenshot_path("dashboard-invitation.png"), full_page=True)
    status, body = await gw.call("POST", "/auth/enroll", json={"code": code, "device": "new"})
    assert status == 201, body

    # Phone-sized.
    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone_page = await phone.new_page()
    await admin_sign_in(phone_page, gw.url)
    await phone_page.screenshot(path=screenshot_path("dashboard-phone.png"), full_page=True)
    await ctx.close()
    await phone.close()


async def _admin_client(gw: GatewayHarness) -> tuple[aiohttp.ClientSession, str]:
    """A signed-in admin session outside the browser, and its CSRF token from a page."""
    client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with client.post(
        f"{gw.url}/admin/login",
        data={"password": ADMIN_PASSWORD},
        headers={"Origin": gw.url},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303, await resp.text()
        cookie = resp.cookies["couchgate_admin"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        assert cookie["path"] == "/admin/"
    async with client.get(f"{gw.url}/admin/invitations") as resp:
        html = await resp.text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return client, match.group(1)


async def test_forged_form_posts_are_refused(admin_gateway: GatewayHarness) -> None:
    gw = admin_gateway
    victim = await gw.new_device("victim@example.org")
    client, token = await _admin_client(gw)
    target = f"{gw.url}/admin/users/{victim.user}/delete"
    refused = {
        "wrong origin": ({"Origin": "https://evil.example"}, {"csrf_token": token}),
        "cross-site fetch": ({"Sec-Fetch-Site": "cross-site"}, {"csrf_token": token}),
        "no origin at all": ({}, {"csrf_token": token}),
        "missing token": ({"Origin": gw.url}, {}),
        "wrong token": ({"Origin": gw.url}, {"csrf_token": token[:-2] + "xx"}),
    }
    try:
        for case, (headers, form) in refused.items():
            async with client.post(
                target, data=form, headers=headers, allow_redirects=False
            ) as resp:
                assert resp.status == 403, case
                body = await resp.json()
                assert body["error"] == "forbidden", case
        assert (await gw.call("GET", "/auth/me", device=victim))[0] == 200

        # Login CSRF: a cross-site post of the right password gets no session either.
        async with client.post(
            f"{gw.url}/admin/login",
            data={"password": ADMIN_PASSWORD},
            headers={"Origin": "https://evil.example"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 403

        # Without a session cookie, the right token and origin are not enough.
        async with (
            aiohttp.ClientSession() as stranger,
            stranger.post(
                target,
                data={"csrf_token": token},
                headers={"Origin": gw.url},
                allow_redirects=False,
            ) as resp,
        ):
            assert resp.status == 303 and resp.headers["Location"] == "/admin/login"

        # The genuine post works.
        async with client.post(
            target,
            data={"csrf_token": token},
            headers={"Origin": gw.url},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
        assert (await gw.call("GET", "/auth/me", device=victim))[0] == 401
    finally:
        await client.close()
