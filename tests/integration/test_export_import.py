"""Export from a couchgate on its embedded store, import into one in front of pouchdb-server:
a PouchDB device re-pointed at the new server pulls nothing new and pushes nothing old, because
every revision (history, conflicts, deletions, attachments) came across as it was."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.archive.files import file_chunks
from tests.conftest import couchdb_settings
from tests.harness import Device, GatewayHarness, start_gateway, stop_gateway
from tests.integration.test_cli import _cli, _use_settings_of
from tests.pouch import JS_DIR, PouchSession, device_remote
from tests.upstreams import Upstream

APP = "notes"
CONFLICT_REV = "1-" + "c0ffee" * 5 + "ab"


async def _export(gateway: GatewayHarness, device: Device, path: Path) -> None:
    async with gateway.session.get(
        f"{gateway.url}/account/api/export", headers=device.headers
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("application/x-ndjson")
        with path.open("wb") as out:
            async for chunk in resp.content.iter_chunked(65536):
                out.write(chunk)


async def _import(gateway: GatewayHarness, device: Device, path: Path) -> tuple[int, Any]:
    async with gateway.session.post(
        f"{gateway.url}/account/api/import",
        headers={**device.headers, "Content-Type": "application/x-ndjson"},
        data=file_chunks(path, 65536),
    ) as resp:
        return resp.status, await resp.json(content_type=None)


async def _leaves(gateway: GatewayHarness, device: Device) -> dict[str, list[str]]:
    status, body = await gateway.peek(
        "GET", f"/{gateway.upstream_db(device, APP)}/_changes?style=all_docs"
    )
    assert status == 200, body
    return {r["id"]: sorted(c["rev"] for c in r["changes"]) for r in body["results"]}


def _docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [{"_id": f"n-{i:02d}", "text": f"note {i}"} for i in range(20)]
    docs.append(
        {
            "_id": "with-file",
            "_attachments": {
                "a.bin": {
                    "content_type": "application/octet-stream",
                    "data": base64.b64encode(bytes(range(256)) * 8).decode(),
                }
            },
        }
    )
    return docs


@pytest.mark.parametrize("target", ["pouchdb-server", "couchdb"])
async def test_a_device_carries_on_after_export_and_import(
    target: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """From the embedded store to pouchdb-server, and to Apache CouchDB (jwt mode)."""
    upstream: Upstream = request.getfixturevalue("pouchdb" if target != "couchdb" else target)
    mode = "jwt" if upstream.jwt_secret else "admin"
    settings = couchdb_settings(upstream, mode) if target == "couchdb" else {}
    old = await start_gateway(None, data_dir=str(tmp_path / "old"))
    new = await start_gateway(upstream, **settings)
    try:
        device = await old.new_device()
        assert (await old.call("PUT", f"/db/{APP}/", device=device))[0] == 201
        # A conflict made on the server, and a checkpoint that must stay behind.
        assert (await old.call("PUT", f"/db/{APP}/c1", device=device, json={"v": 1}))[0] == 201
        status, _ = await old.call(
            "POST",
            f"/db/{APP}/_bulk_docs",
            device=device,
            json={"docs": [{"_id": "c1", "_rev": CONFLICT_REV, "v": 2}], "new_edits": False},
        )
        assert status == 201
        assert (await old.call("PUT", f"/db/{APP}/_local/ck", device=device, json={"x": 1}))[
            0
        ] == 201

        async with await PouchSession.open("repoint", JS_DIR / "repoint.mjs") as session:
            await session.send(
                {"old": device_remote(device, APP), "docs": _docs(), "delete": ["n-03"]}
            )
            synced = await session.wait_for("synced", timeout=60)
            assert len(synced["leaves"]["c1"]) == 2  # the device holds the conflict too

            archive = tmp_path / "export.ndjson"
            await _export(old, device, archive)
            records = [json.loads(line) for line in archive.read_text().splitlines()]
            assert records[0]["type"] == "manifest" and records[-1]["type"] == "end"
            assert not any(r.get("doc", {}).get("_id", "").startswith("_local/") for r in records)

            moved = await new.new_device()
            status, report = await _import(new, moved, archive)
            assert status == 200, report
            leaves = await _leaves(old, device)
            assert report["loaded"] == {APP: sum(len(revs) for revs in leaves.values())}
            # A retry (or a second import) loads nothing twice.
            status, again = await _import(new, moved, archive)
            assert status == 200 and again["loaded"] == {}
            assert again["already_present"] == report["loaded"]
            assert await _leaves(new, moved) == leaves

            await session.send({"new": device_remote(moved, APP)})
            result = await session.result(timeout=60)
        assert result["pull"]["docs_written"] == 0, result
        assert result["push"]["docs_written"] == 0, result
        assert not any(line.endswith("/_bulk_docs") for line in result["sent"]), result["sent"]
        assert result["leaves"] == synced["leaves"]
        status, _ = await new.peek("GET", f"/{new.upstream_db(moved, APP)}/_local/ck")
        assert status == 404
    finally:
        await stop_gateway(old)
        await stop_gateway(new)


async def test_import_is_refused_past_the_quota_and_a_cut_off_file_is_told(
    make_gateway: Any, tmp_path: Path
) -> None:
    source = await make_gateway()
    device = await source.new_device()
    assert (await source.call("PUT", f"/db/{APP}/", device=device))[0] == 201
    for i in range(8):
        assert (await source.call("PUT", f"/db/{APP}/d{i}", device=device, json={"i": i}))[0] == 201
    archive = tmp_path / "export.ndjson"
    await _export(source, device, archive)

    small = await make_gateway(quota_docs=5)
    mover = await small.new_device()
    status, body = await _import(small, mover, archive)
    assert status == 403 and body["error"] == "forbidden"
    assert "quota of 5 documents" in body["reason"]

    cut = tmp_path / "cut.ndjson"
    cut.write_text("\n".join(archive.read_text().splitlines()[:-2]) + "\n")
    roomy = await make_gateway()
    other = await roomy.new_device()
    status, body = await _import(roomy, other, cut)
    assert status == 400 and "ends early" in body["reason"]
    status, body = await _import(roomy, other, archive)  # the whole file then completes it
    assert status == 200 and body["loaded"] == {APP: 1}

    not_export = tmp_path / "notes.txt"
    not_export.write_text('{"hello": "world"}\n')
    status, body = await _import(roomy, other, not_export)
    assert (status, body["error"]) == (400, "bad_request")


async def test_export_needs_a_device_token(gateway: GatewayHarness) -> None:
    status, body = await gateway.call("GET", "/account/api/export")
    assert (status, body["error"]) == (401, "unauthorized")


async def test_admin_moves_a_user_with_the_cli(
    make_gateway: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = await make_gateway()
    device = await source.new_device()
    assert (await source.call("PUT", f"/db/{APP}/", device=device))[0] == 201
    for i in range(3):
        assert (await source.call("PUT", f"/db/{APP}/d{i}", device=device, json={"i": i}))[0] == 201
    status, _ = await source.call(
        "POST", f"/db/{APP}/_bulk_docs", device=device, json={"docs": _docs()[-1:]}
    )
    assert status == 201
    archive = tmp_path / "moved.ndjson"
    _use_settings_of(source, monkeypatch)
    assert await _cli("users", "export", device.user, str(archive)) == 0

    target = await make_gateway()
    moved = await target.new_device()
    _use_settings_of(target, monkeypatch)
    assert await _cli("users", "import", moved.user, str(archive)) == 0
    assert await _cli("users", "import", moved.user, str(archive)) == 0  # again: a no-op
    assert await _leaves(target, moved) == await _leaves(source, device)
    async with target.session.get(
        f"{target.url}/db/{APP}/with-file/a.bin", headers=moved.headers
    ) as resp:
        assert resp.status == 200 and await resp.read() == bytes(range(256)) * 8
    assert await _cli("users", "import", "nobody-here", str(archive)) == 1
