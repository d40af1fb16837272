"""End-to-end encryption through couchgate: PouchDB with the ep1 plugin, Python's
``encryption_plugin``, and the gateway's plaintext guard, against the real upstream.

Every gateway here runs with encryption required for every app (``plaintext_apps=""``), as a
production server does by default. PouchDB runs under Node (``tests/js/e2e.mjs``); the upstream
is peeked at directly, as its admin, to see what the server really holds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from typing import Any
from urllib.parse import quote

import pytest

import encryption_plugin as ep
from encryption_plugin.codec import b64u_encode
from tests.harness import Device, GatewayHarness, MakeGateway
from tests.pouch import E2E, run_pouch, unexpected_http_failures

APP = "notes"
MARKER = "zebra-quartz-7f3c"
NOT_ENCRYPTED = {"error": "forbidden", "reason": "document is not encrypted"}
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
async def gateway(make_gateway: MakeGateway) -> GatewayHarness:
    """A couchgate that requires the ep1 envelope for every app (the production default)."""
    return await make_gateway(plaintext_apps="")


@pytest.fixture
def keyring() -> ep.Keyring:
    return ep.Keyring.generate(APP)


async def run_e2e(
    command: str,
    *,
    timeout: float = 90.0,  # noqa: ASYNC109 - on expiry the Node process is killed
    check: bool = True,
    **params: Any,
) -> dict[str, Any]:
    """Run one ``e2e.mjs`` command to its end (``tests.pouch.run_pouch`` with the ep1 plugin)."""
    return await run_pouch(command, timeout=timeout, check=check, driver=E2E, **params)


def sealed_remote(device: Device, key: str | None) -> dict[str, Any]:
    return {"url": device.db_url(APP), "token": device.token, "key": key}


async def upstream(gateway: GatewayHarness, method: str, path: str, body: object = None) -> Any:
    """A request on the device's upstream database as the upstream's admin, off the loop."""
    status, answer = await asyncio.to_thread(gateway.upstream.request, method, path, body)
    assert status < 300, (status, answer)
    return answer


async def stored_docs(gateway: GatewayHarness, device: Device) -> list[dict[str, Any]]:
    """Every document the upstream holds for the device, attachments inline.

    One GET per document (``?attachments=true``): the embedded store's ``_all_docs`` does not
    inline attachments, and each doc GET does on every upstream.
    """
    db = gateway.upstream_db(device, APP)
    listing = await upstream(gateway, "GET", f"/{db}/_all_docs")
    return [
        await upstream(gateway, "GET", f"/{db}/{quote(row['id'], safe='')}?attachments=true")
        for row in listing["rows"]
    ]


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def assert_clean(output: dict[str, Any]) -> None:
    assert unexpected_http_failures(output) == []
    assert output["e2e_errors"] == []


def assert_replicated(replication: dict[str, Any], count: int) -> None:
    assert replication["ok"] is True, replication
    assert replication["errors"] == []
    assert replication["doc_write_failures"] == 0
    assert replication["docs_written"] == count


def plaintext(doc: dict[str, Any]) -> dict[str, Any]:
    """A pulled or opened document as written: no ``_rev``, attachments as type and data."""
    out = {k: v for k, v in doc.items() if k not in ("_rev", "_attachments")}
    if doc.get("_attachments"):
        out["_attachments"] = {
            name: {"content_type": att["content_type"], "data": att["data"]}
            for name, att in doc["_attachments"].items()
        }
    return out


def marked_docs() -> list[dict[str, Any]]:
    """Documents with the marker in bodies, attachment names and attachment contents."""
    docs: list[dict[str, Any]] = [
        {
            "_id": "with-text-attachment",
            "title": f"Title {MARKER}",
            "nested": {"deep": [MARKER, {"again": MARKER}]},
            "_attachments": {
                f"{MARKER}.txt": {"content_type": "text/plain", "data": b64(f"text {MARKER}\n")},
            },
        },
        {
            "_id": "with-binary-attachments",
            "kind": "photo",
            "_attachments": {
                "photo.png": {
                    "content_type": "image/png",
                    "data": b64(os.urandom(20_000) + MARKER.encode() + os.urandom(500)),
                },
                f"notes-{MARKER}.md": {"content_type": "text/markdown", "data": b64(MARKER * 50)},
            },
        },
    ]
    docs += [{"_id": f"note-{i:03d}", "n": i, "text": f"{MARKER} #{i} ✓"} for i in range(40)]
    return docs


def assert_no_trace(stored: list[dict[str, Any]], marker: str) -> None:
    """Nothing of ``marker`` in any stored body, attachment name, type or content."""
    assert marker not in json.dumps(stored, ensure_ascii=False)
    for doc in stored:
        assert [k for k in doc if not k.startswith("_")] == ["e2e"], doc["_id"]
        for att in doc.get("_attachments", {}).values():
            assert att["content_type"] == "application/octet-stream"
            assert marker.encode() not in base64.b64decode(att["data"])


async def test_sealed_push_leaves_no_trace_and_a_second_device_reads_everything(
    gateway: GatewayHarness, keyring: ep.Keyring
) -> None:
    phone = await gateway.new_device()
    docs = marked_docs()

    pushed = await run_e2e("push", remote=sealed_remote(phone, keyring.export()), docs=docs)
    assert_replicated(pushed["result"]["replication"], len(docs))
    assert_clean(pushed)

    stored = await stored_docs(gateway, phone)
    assert sorted(doc["_id"] for doc in stored) == sorted(doc["_id"] for doc in docs)
    assert_no_trace(stored, MARKER)

    laptop = await gateway.new_device(same_user_as=phone)
    pulled = await run_e2e("pull", remote=sealed_remote(laptop, keyring.export_base32()))
    assert_replicated(pulled["result"]["replication"], len(docs))
    assert_clean(pulled)
    assert [plaintext(doc) for doc in pulled["result"]["docs"]] == sorted(
        docs, key=lambda doc: doc["_id"]
    )


async def test_live_sync_between_two_devices_stays_sealed(
    gateway: GatewayHarness, keyring: ep.Keyring
) -> None:
    phone = await gateway.new_device()
    laptop = await gateway.new_device(same_user_as=phone)
    assert (await gateway.call("PUT", f"/db/{APP}/", device=phone))[0] == 201

    out = await run_e2e(
        "sync-live",
        remote_a=sealed_remote(phone, keyring.export()),
        remote_b=sealed_remote(laptop, keyring.export()),
        marker=MARKER,
        timeout_ms=15_000,
    )
    result = out["result"]
    assert result["all_seen"], result["steps"]
    assert result["errors"] == []
    assert out["e2e_errors"] == []
    assert [plaintext(d) for d in result["docs"]["a"]] == [
        plaintext(d) for d in result["docs"]["b"]
    ]
    assert result["docs"]["b"][0]["_attachments"][MARKER]["data"] == b64(MARKER)
    assert_no_trace(await stored_docs(gateway, phone), MARKER)


async def test_python_and_javascript_open_what_the_other_sealed(
    gateway: GatewayHarness, keyring: ep.Keyring
) -> None:
    phone = await gateway.new_device()
    url = phone.db_url(APP)
    from_python = {
        "_id": "from-python",
        "text": "sealed in Python ✓ 😀",
        "_attachments": {"py.txt": {"content_type": "text/plain", "data": b64("from Python")}},
    }
    async with gateway.session.put(f"{url}/", headers=phone.headers) as r:
        assert r.status == 201
    async with gateway.session.put(
        f"{url}/from-python", json=ep.seal_doc(from_python, keyring), headers=phone.headers
    ) as r:
        assert r.status == 201, await r.text()

    from_js = {
        "_id": "from-js",
        "list": [1, 2.5, None, {"x": "y"}],
        "_attachments": {"js.bin": {"content_type": "application/x-test", "data": b64(b"\0\1\2")}},
    }
    pushed = await run_e2e("push", remote=sealed_remote(phone, keyring.export()), docs=[from_js])
    assert_replicated(pushed["result"]["replication"], 1)

    pulled = await run_e2e("pull", remote=sealed_remote(phone, keyring.export()))
    assert_clean(pulled)
    assert [plaintext(doc) for doc in pulled["result"]["docs"]] == [from_js, from_python]

    async with gateway.session.get(
        f"{url}/from-js",
        params={"attachments": "true"},
        headers={**phone.headers, "Accept": "application/json"},  # else CouchDB sends multipart
    ) as r:
        assert r.status == 200
        stored = json.loads(await r.text())  # pouchdb-server answers JSON as text/plain
    assert list(stored) != list(from_js) and "e2e" in stored
    assert plaintext(ep.open_doc(stored, keyring)) == from_js


async def test_a_body_moved_to_another_document_is_reported_and_the_rest_replicates(
    gateway: GatewayHarness, keyring: ep.Keyring
) -> None:
    phone = await gateway.new_device()
    docs = [{"_id": name, "v": name} for name in ("a", "b", "c")]
    pushed = await run_e2e("push", remote=sealed_remote(phone, keyring.export()), docs=docs)
    assert_replicated(pushed["result"]["replication"], 3)

    # The server (or whoever holds it) copies b's sealed body onto a.
    db = gateway.upstream_db(phone, APP)
    doc_a = await upstream(gateway, "GET", f"/{db}/a")
    doc_b = await upstream(gateway, "GET", f"/{db}/b")
    moved = await upstream(gateway, "PUT", f"/{db}/a", {**doc_a, "e2e": doc_b["e2e"]})

    laptop = await gateway.new_device(same_user_as=phone)
    pulled = await run_e2e("pull", remote=sealed_remote(laptop, keyring.export()))
    replication = pulled["result"]["replication"]
    assert replication["ok"] is True and replication["errors"] == []
    assert [doc["_id"] for doc in pulled["result"]["docs"]] == ["b", "c"]
    assert [plaintext(doc) for doc in pulled["result"]["docs"]] == docs[1:]
    assert [(e["id"], e["rev"]) for e in pulled["e2e_errors"]] == [("a", moved["rev"])]
    assert pulled["e2e_errors"][0]["error"]["name"] == "AuthenticationFailed"


# -- the plaintext guard ----------------------------------------------------------------------


async def provisioned(gateway: GatewayHarness) -> Device:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", f"/db/{APP}/", device=device))[0] == 201
    return device


async def test_a_plaintext_document_is_refused_by_put(
    gateway: GatewayHarness, keyring: ep.Keyring
) -> None:
    device = await provisioned(gateway)
    status, body = await gateway.call(
        "PUT", f"/db/{APP}/plain", device=device, json={"title": MARKER}
    )
    assert (status, body) == (403, NOT_ENCRYPTED)
    # Another content type, which CouchDB would still store as JSON, is refused outright.
    status, body = await gateway.call(
        "PUT",
        f"/db/{APP}/plain",
        device=device,
        data=json.dumps({"title": MARKER}),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert (status, body["error"]) == (415, "bad_content_type")
    assert (await gateway.call("GET", f"/db/{APP}/plain", device=device))[0] == 404
    status, _ = await gateway.call(
        "PUT", f"/db/{APP}/sealed", device=device, json=ep.seal_doc({"_id": "sealed"}, keyring)
    )
    assert status == 201
    assert [d["_id"] for d in await stored_docs(gateway, device)] == ["sealed"]


async def test_plaintext_is_refused_per_document_in_bulk_docs(
    gateway: GatewayHarness, keyring: ep.Keyring
) -> None:
    device = await provisioned(gateway)
    docs = [
        ep.seal_doc({"_id": "one", "n": 1}, keyring),
        {"_id": "two", "n": 2},
        ep.seal_doc({"_id": "three", "n": 3}, keyring),
        {"_id": "_local/checkpoint", "last_seq": 3},
    ]
    status, results = await gateway.call(
        "POST", f"/db/{APP}/_bulk_docs", device=device, json={"docs": docs}
    )
    assert status == 201
    assert [r.get("ok") for r in results] == [True, None, True, True]
    assert results[1] == {"id": "two", **NOT_ENCRYPTED}
    assert [d["_id"] for d in await stored_docs(gateway, device)] == ["one", "three"]

    # The replicator's shape (new_edits=false) answers only failures: the refusal alone.
    replicated = [
        {**ep.seal_doc({"_id": "four"}, keyring), "_rev": "1-" + "a" * 32},
        {"_id": "five", "_rev": "1-" + "b" * 32, "n": 5},
    ]
    status, results = await gateway.call(
        "POST",
        f"/db/{APP}/_bulk_docs",
        device=device,
        json={"docs": replicated, "new_edits": False},
    )
    assert (status, results) == (201, [{"id": "five", **NOT_ENCRYPTED}])

    # A tombstone carries nothing to hide.
    one = await upstream(gateway, "GET", f"/{gateway.upstream_db(device, APP)}/one")
    status, results = await gateway.call(
        "POST",
        f"/db/{APP}/_bulk_docs",
        device=device,
        json={"docs": [{"_id": "one", "_rev": one["_rev"], "_deleted": True}]},
    )
    assert status == 201 and results[0]["ok"] is True


async def test_plaintext_attachments_beside_a_sealed_body_are_refused(
    gateway: GatewayHarness, keyring: ep.Keyring
) -> None:
    """A well-formed envelope does not vouch for ``_attachments``: each must look sealed too."""
    device = await provisioned(gateway)
    diary = {"content_type": "text/plain", "data": b64(f"my secret diary {MARKER}")}
    docs = [
        {**ep.seal_doc({"_id": "a"}, keyring), "_attachments": {"diary.txt": diary}},
        ep.seal_doc({"_id": "b", "_attachments": {"d.txt": diary}}, keyring),
        {
            **ep.seal_doc({"_id": "c"}, keyring),
            "_attachments": {
                uuid.uuid4().hex: {**diary, "content_type": "application/octet-stream"}
            },
        },
    ]
    status, results = await gateway.call(
        "POST", f"/db/{APP}/_bulk_docs", device=device, json={"docs": docs}
    )
    assert status == 201
    assert [r.get("ok") for r in results] == [None, True, None]
    for index, doc_id in ((0, "a"), (2, "c")):
        assert results[index]["id"] == doc_id
        assert results[index]["error"] == "forbidden"
        assert results[index]["reason"].startswith("attachment is not encrypted: ")
    stored = await stored_docs(gateway, device)
    assert [d["_id"] for d in stored] == ["b"]
    assert ep.open_doc(stored[0], keyring)["_attachments"]["d.txt"]["data"] == diary["data"]
    assert_no_trace(stored, MARKER)

    # The same through a JSON PUT, and as a multipart part behind a sealed body.
    status, answer = await gateway.call("PUT", f"/db/{APP}/a", device=device, json=docs[0])
    assert (status, answer["error"]) == (403, "forbidden")
    assert answer["reason"].startswith("attachment is not encrypted: ")
    sealed_body = {**ep.seal_doc({"_id": "mp"}, keyring), "_rev": "1-" + "e" * 32}
    status, answer = await put_as_replicator(
        gateway, device, sealed_body, {"diary.txt": MARKER.encode() * 4}
    )
    assert (status, answer["error"]) == (403, "forbidden")
    assert answer["reason"].startswith("attachment is not encrypted: ")
    assert [d["_id"] for d in await stored_docs(gateway, device)] == ["b"]


async def test_a_standalone_attachment_write_is_refused(gateway: GatewayHarness) -> None:
    device = await provisioned(gateway)
    status, body = await gateway.call(
        "PUT",
        f"/db/{APP}/doc/{MARKER}.txt",
        device=device,
        data=MARKER,
        headers={"Content-Type": "text/plain"},
    )
    assert (status, body) == (
        403,
        {
            "error": "forbidden",
            "reason": "an encrypted app writes attachments sealed, inside their document",
        },
    )


async def put_as_replicator(
    gateway: GatewayHarness, device: Device, doc: dict[str, Any], attachments: dict[str, bytes]
) -> tuple[int, Any]:
    """PUT ``/db/<app>/mp?new_edits=false`` as ``multipart/related``, as CouchDB's replicator."""
    content_type, body = multipart_related(doc, attachments)
    return await gateway.call(
        "PUT",
        f"/db/{APP}/mp?new_edits=false",
        device=device,
        data=body,
        headers={"Content-Type": content_type},
    )


def multipart_related(doc: dict[str, Any], attachments: dict[str, bytes]) -> tuple[str, bytes]:
    """A doc PUT body as CouchDB's replicator sends it: JSON first, attachment bytes after."""
    boundary = uuid.uuid4().hex
    doc = {
        **doc,
        "_attachments": {
            name: {"follows": True, "content_type": "application/octet-stream", "length": len(data)}
            for name, data in attachments.items()
        },
    }
    parts = [
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
        json.dumps(doc).encode(),
    ]
    for name, data in attachments.items():
        parts += [
            f'\r\n--{boundary}\r\nContent-Disposition: attachment; filename="{name}"\r\n'.encode(),
            b"Content-Type: application/octet-stream\r\n\r\n",
            data,
        ]
    parts.append(f"\r\n--{boundary}--".encode())
    return f'multipart/related; boundary="{boundary}"', b"".join(parts)


async def test_multipart_doc_puts_are_checked_and_their_attachments_stream(
    gateway: GatewayHarness, keyring: ep.Keyring
) -> None:
    device = await provisioned(gateway)
    data = os.urandom(300_000)
    sealed = ep.seal_doc(
        {
            "_id": "mp",
            "t": 1,
            "_attachments": {"a.bin": {"content_type": "x/y", "data": b64(data)}},
        },
        keyring,
    )
    stored_name, stored = next(iter(sealed["_attachments"].items()))
    body_doc = {k: v for k, v in sealed.items() if k != "_attachments"}
    status, answer = await put_as_replicator(
        gateway,
        device,
        {**body_doc, "_rev": "1-" + "c" * 32},
        {stored_name: base64.b64decode(stored["data"])},
    )
    assert status == 201, answer
    async with gateway.session.get(
        f"{device.db_url(APP)}/mp",
        params={"attachments": "true"},
        headers={**device.headers, "Accept": "application/json"},  # else CouchDB sends multipart
    ) as r:
        opened = ep.open_doc(json.loads(await r.text()), keyring)
    assert base64.b64decode(opened["_attachments"]["a.bin"]["data"]) == data

    content_type, body = multipart_related(
        {"_id": "mp-plain", "_rev": "1-" + "d" * 32, "title": MARKER}, {"x.txt": MARKER.encode()}
    )
    status, answer = await gateway.call(
        "PUT",
        f"/db/{APP}/mp-plain?new_edits=false",
        device=device,
        data=body,
        headers={"Content-Type": content_type},
    )
    assert (status, answer) == (403, NOT_ENCRYPTED)


async def test_a_wrap_record_round_trips_and_a_malformed_one_is_refused(
    gateway: GatewayHarness, keyring: ep.Keyring
) -> None:
    device = await provisioned(gateway)
    record = await ep.wrap_async(keyring, PASSPHRASE)
    doc_id = f"ep1-keywrap-{b64u_encode(keyring.kid)}"
    path = f"/db/{APP}/{doc_id}"

    status, _ = await gateway.call("PUT", path, device=device, json=record)
    assert status == 201
    status, fetched = await gateway.call("GET", path, device=device)
    assert status == 200
    body = {k: v for k, v in fetched.items() if not k.startswith("_")}
    assert body == record
    unwrapped = await ep.unwrap_async(body, PASSPHRASE, app_id=APP)
    assert unwrapped.export() == keyring.export()

    update = {**record, "_rev": fetched["_rev"], "hint": "the name of my first cat"}
    status, answer = await gateway.call("PUT", path, device=device, json=update)
    assert status == 403 and answer["error"] == "forbidden"
    assert answer["reason"].startswith("not a valid ep1w key wrap record: ")
    other = ep.Keyring.generate(APP)
    status, answer = await gateway.call(
        "PUT", f"/db/{APP}/ep1-keywrap-{b64u_encode(other.kid)}", device=device, json=record
    )
    assert status == 403 and "does not match" in answer["reason"]
    status, answer = await gateway.call("PUT", f"/db/{APP}/not-a-wrap", device=device, json=record)
    assert (status, answer) == (403, NOT_ENCRYPTED)


async def test_plaintext_apps_still_take_plaintext(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(plaintext_apps="scratch*")
    device = await gateway.new_device()
    for app, expected in (("scratchpad", 201), (APP, 403)):
        assert (await gateway.call("PUT", f"/db/{app}/", device=device))[0] == 201
        status, _ = await gateway.call("PUT", f"/db/{app}/x", device=device, json={"t": 1})
        assert status == expected, app
