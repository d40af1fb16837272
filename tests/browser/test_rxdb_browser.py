"""RxDB in Chromium, on its Dexie storage over the browser's real IndexedDB, syncing sealed
through couchgate with RxDB's own replication and the ep1 plugin's ``sealedFetch``: two browser
contexts as two devices of one person, live both ways; the server holds only ciphertext; what
does not open is reported and never stored; a revoked device stops.

One page load per device and one scenario (a browser start costs more than any check in it).
The page is ``tests/js/rxdb-browser.mjs`` (see tests/browser/rxdb_page.py).
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, BrowserContext, Page

import encryption_plugin as ep
from tests.browser.rxdb_page import bundle, open_page
from tests.harness import GatewayHarness, MakeGateway
from tests.integration.test_e2e_encryption import APP, assert_no_trace, stored_docs, upstream

MARKER = "heron-tangent-9b2c"
WAIT_MS = 30_000


@pytest.fixture
async def gateway(make_gateway: MakeGateway) -> GatewayHarness:
    """A couchgate that requires the ep1 envelope for every app (the production default)."""
    return await make_gateway(plaintext_apps="")


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The page's bundle, made once for the three upstreams."""
    return bundle(tmp_path_factory.mktemp("rxdb-page") / "app.js")


async def open_device(
    browser: Browser, gateway: GatewayHarness, module: bytes, remote: dict[str, str], name: str
) -> tuple[BrowserContext, Page]:
    """A device: the page in a context of its own, its live replication started and caught up."""
    context, page = await open_page(browser, gateway.url, module, name)
    await page.evaluate("spec => window.device.start(spec)", {**remote, "name": name})
    return context, page


async def sees(page: Page, doc_id: str, text: str | None) -> None:
    """Wait until the device holds ``doc_id`` with ``text`` (None: until it holds no such doc)."""
    # Synchronous on purpose: wait_for_function takes a returned Promise for a truthy value.
    await page.wait_for_function(
        """([id, text]) => {
            const doc = window.device.state.docs.find(d => d.id === id);
            return text === null ? doc === undefined : doc?.text === text;
        }""",
        arg=[doc_id, text],
        timeout=WAIT_MS,
        polling=100,
    )


async def put(page: Page, doc_id: str, text: str) -> None:
    await page.evaluate("doc => window.device.put(doc)", {"id": doc_id, "text": text})


async def docs(page: Page) -> list[dict[str, object]]:
    return list(await page.evaluate("window.device.state.docs"))


async def test_two_chromium_rxdb_devices_sync_sealed_over_indexeddb(
    gateway: GatewayHarness, browser: Browser, module: bytes
) -> None:
    keyring = ep.Keyring.generate(APP)
    phone = await gateway.new_device()
    laptop = await gateway.new_device(same_user_as=phone)
    devices = {}
    for name, device in (("phone", phone), ("laptop", laptop)):
        remote = {"url": device.db_url(APP), "token": device.token, "key": keyring.export()}
        devices[name] = await open_device(browser, gateway, module, remote, f"rx-{name}")
    (_, a), (_, b) = devices["phone"], devices["laptop"]

    # Live both ways: a write, an edit, a delete.
    await put(a, "from-a", f"a {MARKER}")
    await sees(b, "from-a", f"a {MARKER}")
    await put(b, "from-b", f"b {MARKER}")
    await sees(a, "from-b", f"b {MARKER}")
    await put(a, "from-b", "edited")
    await sees(b, "from-b", "edited")
    await b.evaluate("id => window.device.remove(id)", "from-a")
    await sees(a, "from-a", None)

    # Both edit one note offline, then come back one after the other: RxDB's conflict handler
    # (the server's state wins) settles it on plaintext, the same on both.
    await put(a, "shared", "base")
    await sees(b, "shared", "base")
    for page in (a, b):
        await page.evaluate("window.device.offline()")
    await put(a, "shared", f"from a {MARKER}")
    await put(b, "shared", f"from b {MARKER}")
    for page in (a, b):
        await page.evaluate("window.device.online()")
        await page.evaluate("window.device.inSync()")
    await sees(b, "shared", f"from a {MARKER}")
    await sees(a, "shared", f"from a {MARKER}")
    assert await docs(a) == await docs(b)

    # Whoever holds the server moves a sealed body onto another document and plants one sealed
    # under a key the app does not have: the laptop reports both and keeps what it had.
    db = gateway.upstream_db(phone, APP)
    victim = await upstream(gateway, "GET", f"/{db}/from-b")
    donor = await upstream(gateway, "GET", f"/{db}/shared")
    await upstream(gateway, "PUT", f"/{db}/from-b", {**victim, "e2e": donor["e2e"]})
    planted = ep.seal_doc({"_id": "planted", "text": "not yours"}, ep.Keyring.generate(APP))
    await upstream(gateway, "PUT", f"/{db}/planted", planted)
    await b.wait_for_function(
        "ids => ids.every(id => window.device.state.e2eErrors.some(e => e.id === id))",
        arg=["from-b", "planted"],
        timeout=WAIT_MS,
        polling=100,
    )
    for _, page in devices.values():
        await page.evaluate("window.device.inSync()")
    errors = [(e["id"], e["error"]) for e in await b.evaluate("window.device.state.e2eErrors")]
    assert sorted(set(errors)) == [("from-b", "AuthenticationFailed"), ("planted", "UnknownKey")]
    held = await docs(b)
    assert [(d["id"], d["text"]) for d in held] == [
        ("from-b", "edited"),
        ("shared", f"from a {MARKER}"),
    ]

    # The laptop is revoked: its replication gets 401s and nothing written after reaches it.
    await gateway.revoke(laptop)
    await b.wait_for_function(
        "window.device.state.statuses.includes(401)", timeout=WAIT_MS, polling=100
    )
    await put(a, "after", "after the revocation")
    await a.evaluate("window.device.inSync()")
    assert await docs(b) == held

    # RxDB's Dexie storage keeps the notes in the browser's own IndexedDB.
    for _, page in devices.values():
        names = await page.evaluate("window.device.indexedDbNames()")
        assert any("rx-" in name for name in names), names
    stored = await stored_docs(gateway, phone)
    assert sorted(doc["_id"] for doc in stored) == ["after", "from-b", "planted", "shared"]
    assert_no_trace(stored, MARKER)
    for context, _ in devices.values():
        await context.close()
