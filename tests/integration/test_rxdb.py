"""RxDB apps sync end-to-end encrypted through couchgate: real RxDB from the npm registry on its
Dexie storage (over fake-indexeddb under Node, ``tests/js/rxdb.mjs``), replicating with RxDB's own
``replicateCouchDB`` through the ep1 plugin's ``sealedFetch``, beside PouchDB with the plugin
and Python's ``encryption_plugin``, on every upstream.

Every gateway here requires the envelope for every app, as production does by default; the
upstream is read directly, as its admin, to see what the server really holds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import encryption_plugin as ep
from tests.harness import Device, GatewayHarness
from tests.integration import test_e2e_encryption
from tests.integration.test_e2e_encryption import (
    APP,
    assert_no_trace,
    run_e2e,
    sealed_remote,
    stored_docs,
    upstream,
)
from tests.pouch import JS_DIR, PouchSession, run_pouch

# The encryption tests' fixtures: a gateway that requires the envelope for every app (the
# production default), and a fresh app key.
gateway = test_e2e_encryption.gateway
keyring = test_e2e_encryption.keyring

RXDB = JS_DIR / "rxdb.mjs"
MARKER = "okapi-lantern-5d1e"
STEP_TIMEOUT_S = 90.0


class RxDevices:
    """RxDB devices in one Node process, each with a live sealed replication; one step at a
    time (see the header of ``tests/js/rxdb.mjs``)."""

    def __init__(self, session: PouchSession) -> None:
        self.session = session

    async def step(self, op: str, device: str | None = None, **params: Any) -> dict[str, Any]:
        await self.session.send({"op": op, "device": device, **params})
        return await self.session.wait_for("done", timeout=STEP_TIMEOUT_S)

    async def put(self, device: str, doc: dict[str, Any], **params: Any) -> None:
        await self.step("put", device, doc=doc, **params)

    async def sees(self, device: str, doc_id: str, **fields: Any) -> bool:
        """Whether ``device`` comes to hold ``doc_id`` with these field values."""
        done = await self.step("wait", device, id=doc_id, fields=fields)
        return bool(done["ok"])

    async def loses(self, device: str, doc_id: str) -> bool:
        """Whether ``doc_id`` comes to be deleted on ``device``."""
        done = await self.step("wait", device, id=doc_id, deleted=True)
        return bool(done["ok"])

    async def docs(self, device: str) -> list[dict[str, Any]]:
        return list((await self.step("docs", device))["docs"])


@asynccontextmanager
async def rx_devices(
    remotes: dict[str, dict[str, Any]], output: dict[str, Any]
) -> AsyncIterator[RxDevices]:
    """Devices named as ``remotes`` (each a remote of :func:`sealed_remote`, optionally with a
    ``batch_size``), synced once; on leaving, ``output`` gets the driver's whole output."""
    async with await PouchSession.start("devices", RXDB, devices=remotes) as session:
        await session.wait_for("ready", timeout=STEP_TIMEOUT_S)
        yield RxDevices(session)
        await session.send({"op": "end"})
        output.update(await session.result(timeout=STEP_TIMEOUT_S))


async def phone_and_laptop(
    gateway: GatewayHarness, keyring: ep.Keyring
) -> tuple[Device, Device, dict[str, dict[str, Any]]]:
    """Two devices of one person, and their RxDB remotes as devices "a" and "b"."""
    phone = await gateway.new_device()
    laptop = await gateway.new_device(same_user_as=phone)
    return phone, laptop, {"a": rx_remote(phone, keyring), "b": rx_remote(laptop, keyring)}


def rx_remote(device: Device, keyring: ep.Keyring, **extra: Any) -> dict[str, Any]:
    return {**sealed_remote(device, keyring.export()), **extra}


def opened(docs: list[dict[str, Any]], keyring: ep.Keyring) -> dict[str, dict[str, Any]]:
    """Stored documents opened in Python, by id, without ``_id`` and ``_rev``."""
    out = {}
    for doc in docs:
        plain = ep.open_doc(doc, keyring)
        out[doc["_id"]] = {k: v for k, v in plain.items() if k not in ("_id", "_rev")}
    return out


async def test_two_rxdb_devices_sync_live_both_ways_and_only_ciphertext_is_stored(
    gateway: GatewayHarness, keyring: ep.Keyring
) -> None:
    phone, _, remotes = await phone_and_laptop(gateway, keyring)
    output: dict[str, Any] = {}
    async with rx_devices(remotes, output) as rx:
        await rx.put("a", {"id": "from-a", "text": f"first {MARKER}", "n": 1})
        assert await rx.sees("b", "from-a", text=f"first {MARKER}")
        await rx.put("b", {"id": "from-b", "text": f"second {MARKER} ✓", "n": 2})
        assert await rx.sees("a", "from-b", n=2)
        await rx.put("a", {"id": "from-b", "text": f"edited {MARKER}", "n": 3})
        assert await rx.sees("b", "from-b", text=f"edited {MARKER}", n=3)
        await rx.step("remove", "b", id="from-a")
        assert await rx.loses("a", "from-a")

        # Both edit one note offline, then come back one after the other: RxDB's conflict
        # handler (the server's state wins) settles it, on plaintext, the same on both.
        await rx.put("a", {"id": "shared", "text": "base", "n": 0})
        assert await rx.sees("b", "shared", text="base")
        await rx.step("offline", "a")
        await rx.step("offline", "b")
        await rx.put("a", {"id": "shared", "text": f"from a {MARKER}", "n": 10})
        await rx.put("b", {"id": "shared", "text": f"from b {MARKER}", "n": 20})
        await rx.step("online", "a")
        await rx.step("in-sync", "a")
        await rx.step("online", "b")
        await rx.step("in-sync", "b")
        assert await rx.sees("b", "shared", text=f"from a {MARKER}", n=10)
        assert await rx.sees("a", "shared", text=f"from a {MARKER}", n=10)
        docs_a, docs_b = await rx.docs("a"), await rx.docs("b")

    assert docs_a == docs_b
    assert docs_a == [
        {"id": "from-b", "text": f"edited {MARKER}", "n": 3, "_deleted": False},
        {"id": "shared", "text": f"from a {MARKER}", "n": 10, "_deleted": False},
    ]
    assert output["e2e_errors"] == []
    stored = await stored_docs(gateway, phone)
    assert_no_trace(stored, MARKER)
    live = {doc["_id"]: doc for doc in stored if not doc.get("_deleted")}
    assert opened(list(live.values()), keyring) == {
        "from-b": {"text": f"edited {MARKER}", "n": 3},
        "shared": {"text": f"from a {MARKER}", "n": 10},
    }
    # The deleted note is a sealed tombstone: its last body went up sealed too.
    db = gateway.upstream_db(phone, APP)
    changes = await upstream(gateway, "GET", f"/{db}/_changes?include_docs=true")
    (tombstone,) = [c["doc"] for c in changes["results"] if c["id"] == "from-a"]
    assert tombstone["_deleted"] is True
    assert MARKER not in json.dumps(tombstone)


async def test_rxdb_pouchdb_and_python_devices_read_and_write_the_same_app(
    gateway: GatewayHarness, keyring: ep.Keyring
) -> None:
    rx_phone = await gateway.new_device()
    pouch_laptop = await gateway.new_device(same_user_as=rx_phone)
    python_tool = await gateway.new_device(same_user_as=rx_phone)
    output: dict[str, Any] = {}
    async with rx_devices({"a": rx_remote(rx_phone, keyring)}, output) as rx:
        await rx.put("a", {"id": "from-rxdb", "text": "written by RxDB ✓", "n": 1})
        # An id made from a natural key, as the PouchDB plugin and Python make it.
        await rx.put("a", {"text": "keyed by a date", "n": 5}, natural_key="2026-12-07")
        await rx.step("in-sync", "a")

        pushed = await run_e2e(
            "push",
            remote=sealed_remote(pouch_laptop, keyring.export_base32()),
            docs=[{"_id": "from-pouchdb", "text": "written by PouchDB", "n": 2}],
        )
        assert pushed["result"]["replication"]["docs_written"] == 1
        from_python = {"_id": "from-python", "text": "written by Python 😀", "n": 3}
        async with gateway.session.put(
            f"{python_tool.db_url(APP)}/from-python",
            json=ep.seal_doc(from_python, keyring),
            headers=python_tool.headers,
        ) as r:
            assert r.status == 201, await r.text()

        assert await rx.sees("a", "from-pouchdb", text="written by PouchDB", n=2)
        assert await rx.sees("a", "from-python", text="written by Python 😀", n=3)
        # RxDB edits what PouchDB wrote; PouchDB and Python read the edit.
        await rx.put("a", {"id": "from-pouchdb", "text": "edited by RxDB", "n": 4})
        await rx.step("in-sync", "a")

    assert output["e2e_errors"] == []
    pulled = await run_e2e("pull", remote=sealed_remote(pouch_laptop, keyring.export()))
    assert pulled["e2e_errors"] == []
    assert {d["_id"]: (d["text"], d["n"]) for d in pulled["result"]["docs"]} == {
        "from-rxdb": ("written by RxDB ✓", 1),
        "from-pouchdb": ("edited by RxDB", 4),
        "from-python": ("written by Python 😀", 3),
        ep.id_for("2026-12-07", keyring): ("keyed by a date", 5),
    }
    async with gateway.session.get(
        f"{python_tool.db_url(APP)}/from-rxdb",
        headers={**python_tool.headers, "Accept": "application/json"},
    ) as r:
        assert r.status == 200
        stored = json.loads(await r.text())  # pouchdb-server answers JSON as text/plain
    assert [k for k in stored if not k.startswith("_")] == ["e2e"]
    assert opened([stored], keyring) == {"from-rxdb": {"text": "written by RxDB ✓", "n": 1}}


async def test_documents_that_do_not_open_are_reported_and_never_stored(
    gateway: GatewayHarness, keyring: ep.Keyring
) -> None:
    phone = await gateway.new_device()
    laptop = await gateway.new_device(same_user_as=phone)
    docs = [{"_id": f"note-{i}", "text": f"note {i}", "n": i} for i in range(10)]
    pushed = await run_e2e("push", remote=sealed_remote(phone, keyring.export()), docs=docs)
    assert pushed["result"]["replication"]["docs_written"] == 10

    # Whoever holds the server moves bodies between documents (five in a row, more than a
    # page of the pull below) and plants one sealed under a key the app does not have.
    db = gateway.upstream_db(phone, APP)
    for i in range(5):
        victim = await upstream(gateway, "GET", f"/{db}/note-{i}")
        donor = await upstream(gateway, "GET", f"/{db}/note-{i + 5}")
        await upstream(gateway, "PUT", f"/{db}/note-{i}", {**victim, "e2e": donor["e2e"]})
    stranger = ep.Keyring.generate(APP)
    planted = ep.seal_doc({"_id": "planted", "text": "not yours"}, stranger)
    await upstream(gateway, "PUT", f"/{db}/planted", planted)

    output: dict[str, Any] = {}
    async with rx_devices({"b": rx_remote(laptop, keyring, batch_size=2)}, output) as rx:
        held = await rx.docs("b")

    assert held == [
        {"id": f"note-{i}", "text": f"note {i}", "n": i, "_deleted": False} for i in range(5, 10)
    ]
    reported = {(e["id"], e["error"]["name"]) for e in output["e2e_errors"]}
    assert {(f"note-{i}", "AuthenticationFailed") for i in range(5)} <= reported
    assert ("planted", "UnknownKey") in reported
    assert {doc_id for doc_id, _ in reported} == {f"note-{i}" for i in range(5)} | {"planted"}


async def test_a_revoked_rxdb_device_stops_receiving(
    gateway: GatewayHarness, keyring: ep.Keyring
) -> None:
    phone, laptop, remotes = await phone_and_laptop(gateway, keyring)
    output: dict[str, Any] = {}
    async with rx_devices(remotes, output) as rx:
        await rx.put("a", {"id": "before", "text": "before", "n": 1})
        assert await rx.sees("b", "before", text="before")

        await gateway.revoke(laptop)
        waited = await rx.step("wait-error", "b", status=401)
        assert waited["ok"], waited
        await rx.put("a", {"id": "after", "text": "after", "n": 2})
        await rx.step("in-sync", "a")
        held_by_b = await rx.docs("b")

    assert [doc["id"] for doc in held_by_b] == ["before"]
    stored = await stored_docs(gateway, phone)
    assert sorted(doc["_id"] for doc in stored) == ["after", "before"]


async def test_an_rxdb_app_signs_in_and_pairs_with_the_packaged_calls(
    gateway: GatewayHarness,
) -> None:
    _, code = await gateway.enrollment_code()
    out = await run_pouch(
        "pair",
        driver=RXDB,
        timeout=STEP_TIMEOUT_S,
        base=gateway.url,
        app=APP,
        enrollment_code=code,
        text=f"paired {MARKER}",
    )
    result = out["result"]
    assert result["seen"] is True
    assert result["users"][0] == result["users"][1]
    assert result["fingerprints"][0] == result["fingerprints"][1]
    assert result["link_has_key_in_fragment"] is True
    assert result["reused"]["status"] == 401  # a link code pairs one device only
    assert out["e2e_errors"] == []
