"""The RxDB page in Chromium (``tests/js/rxdb-browser.mjs``): bundled once with esbuild and served
by Playwright on the gateway's own origin, as an app served beside its couchgate would be. Used
by tests/browser/test_rxdb_browser.py and bench/bench_rxdb.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, Route

from tests.pouch import JS_DIR

PAGE = '<!doctype html><meta charset="utf-8"><script type="module" src="app.js"></script>'
READY_MS = 30_000


def bundle(out: Path) -> bytes:
    """The page's module: rxdb-browser.mjs with RxDB, Dexie and the plugin, in one file."""
    proc = subprocess.run(
        ["node", "bundle.mjs", "rxdb-browser.mjs", str(out)],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return out.read_bytes()


async def open_page(
    browser: Browser, gateway_url: str, module: bytes, name: str
) -> tuple[BrowserContext, Page]:
    """A fresh browser context (its own IndexedDB) with the page loaded, ``window.device`` ready;
    the page's console goes to stderr under ``name``."""
    context = await browser.new_context()
    base = f"{gateway_url}/rxdb-app/"

    async def serve(route: Route) -> None:
        if route.request.url.endswith("/app.js"):
            await route.fulfill(body=module, content_type="text/javascript")
        else:
            await route.fulfill(body=PAGE, content_type="text/html")

    await context.route(f"{base}**", serve)
    page = await context.new_page()
    page.on("console", lambda msg: print(f"[{name}] {msg.text}", file=sys.stderr))
    await page.goto(base)
    await page.wait_for_function("window.device !== undefined", timeout=READY_MS)
    return context, page
