"""RxDB in Chromium, on its Dexie storage over the browser's real IndexedDB, syncing sealed
through couchgate with RxDB's own replication and the ep1 plugin's ``sealedFetch``: two browser
contexts as two devices of one person, live both ways; the server holds only ciphertext.

The page is ``tests/js/rxdb-browser.mjs``, bundled with esbuild at test time and served by
Playwright on the gateway's own origin (as an app served beside its couchgate would be).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route

import encryption_plugin as ep
from tests.harness import GatewayHarness, MakeGateway
from tests.integration.test_e2e_encryption import APP, assert_no_trace, stored_docs
from tests.pouch import JS_DIR

MARKER = "heron-tangent-9b2c"
PAGE = '<!doctype html><meta charset="utf-8"><script type="module" src="app.js"></script>'
WAIT_MS = 30_000


@pytest.fixture
async def gateway(make_gateway: MakeGateway) -> GatewayHarness:
    """A couchgate that requires the ep1 envelope for every app (the production default)."""
    return await make_gateway(plaintext_apps="")


@pytest.fixture
async def bundle(tmp_path: Path) -> bytes:
    """The page's module: rxdb-browser.mjs with RxDB, Dexie and the plugin, bundled."""
    out = tmp_path / "app.js"
    proc = await asyncio.create_subprocess_exec(
        "node",
        "bundle.mjs",
        "rxdb-browser.mjs",
        str(out),
        cwd=JS_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode(errors="replace")
    return out.read_bytes()


async def open_device(
    browser: Browser, gateway: GatewayHarness, bundle: bytes, remote: dict[str, Any], name: str
) -> tuple[BrowserContext, Page]:
    """A fresh browser context (its own IndexedDB) with the page loaded and the device started."""
    context = await browser.new_context()
    base = f"{gateway.url}/rxdb-app/"

    async def serve(route: Route) -> None:
        if route.request.url.endswith("/app.js"):
            await route.fulfill(body=bundle, content_type="text/javascript")
        else:
            await route.fulfill(body=PAGE, content_type="text/html")

    await context.route(f"{base}**", serve)
    page = await context.new_page()
    page.on("console", lambda msg: print(f"[{name}] {msg.text}", file=sys.stderr))
    await page.goto(base)
    await page.wait_for_function("window.device !== undefined", timeout=WAIT_MS)
    await page.evaluate("spec => window.device.start(spec)", {**remote, "name": name})
    return context, page


async def sees(page: Page, doc_id: str, text: str) -> None:
    # Synchronous on purpose: wait_for_function takes a returned Promise for a truthy value.
    await page.wait_for_function(
        "([id, text]) => window.device.state.docs.some(d => d.id === id && d.text === text)",
        arg=[doc_id, text],
        timeout=WAIT_MS,
        polling=100,
    )


async def test_two_chromium_rxdb_devices_sync_sealed_over_indexeddb(
    gateway: GatewayHarness, browser: Browser, bundle: bytes
) -> None:
    keyring = ep.Keyring.generate(APP)
    phone = await gateway.new_device()
    laptop = await gateway.new_device(same_user_as=phone)
    devices = {}
    for name, device in (("phone", phone), ("laptop", laptop)):
        remote = {"url": device.db_url(APP), "token": device.token, "key": keyring.export()}
        devices[name] = await open_device(browser, gateway, bundle, remote, f"rx-{name}")
    (_, a), (_, b) = devices["phone"], devices["laptop"]

    await a.evaluate("doc => window.device.put(doc)", {"id": "from-a", "text": f"a {MARKER}"})
    await sees(b, "from-a", f"a {MARKER}")
    await b.evaluate("doc => window.device.put(doc)", {"id": "from-b", "text": f"b {MARKER}"})
    await sees(a, "from-b", f"b {MARKER}")
    await a.evaluate("doc => window.device.put(doc)", {"id": "from-b", "text": "edited"})
    await sees(b, "from-b", "edited")

    for _, page in devices.values():
        state = await page.evaluate("window.device.state.e2eErrors")
        assert state == []
        # RxDB's Dexie storage keeps the notes in the browser's own IndexedDB.
        names = await page.evaluate("window.device.indexedDbNames()")
        assert any("rx-" in name for name in names), names
    stored = await stored_docs(gateway, phone)
    assert sorted(doc["_id"] for doc in stored) == ["from-a", "from-b"]
    assert_no_trace(stored, MARKER)
    for context, _ in devices.values():
        await context.close()
