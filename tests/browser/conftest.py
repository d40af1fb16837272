"""Chromium for the browser tests: Debian's package driven by Playwright for Python.

Playwright's own browser download is never used (no ``playwright install``): CI installs
``chromium`` with apt. The browser runs in the test's event loop, next to the gateway it talks to.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from gateway import keys
from gateway.dashboard.records import AdminRecords
from tests.harness import GatewayHarness

CHROMIUM = os.environ.get("COUCHGATE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"no chromium at {CHROMIUM}: apt-get install -y chromium")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def admin_gateway(gateway: GatewayHarness) -> GatewayHarness:
    """The test gateway, with an admin password set as ``couchgate admin set-password`` does."""
    await AdminRecords(gateway.app[keys.BACKEND].records).set_password(ADMIN_PASSWORD)
    return gateway


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / name
