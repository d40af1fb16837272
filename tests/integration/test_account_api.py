"""Self-service through ``/account/api`` with a device token: devices, remote copies, account."""

from __future__ import annotations

from typing import Any

from tests.harness import GatewayHarness, GatewayTarget
from tests.integration.test_limits import skip_byte_quotas_on_pouchdb_server


async def test_devices_apps_and_account(gateway: GatewayHarness) -> None:
    laptop = await gateway.new_device(name="laptop")
    phone = await gateway.new_device(same_user_as=laptop, name="phone")
    other = await gateway.new_device()

    status, devices = await gateway.call("GET", "/account/api/devices", device=laptop)
    assert status == 200
    assert [(d["name"], d["current"]) for d in devices] == [("laptop", True), ("phone", False)]

    assert (await gateway.call("PUT", "/db/notes/", device=laptop))[0] == 201
    assert (await gateway.call("PUT", "/db/notes/n1", device=laptop, json={"e2e": "x"}))[0] == 201
    status, apps = await gateway.call("GET", "/account/api/apps", device=phone)
    assert status == 200
    assert [(a["app"], a["doc_count"]) for a in apps] == [("notes", 1)]
    assert isinstance(apps[0]["size"], int | None)

    # Another person's device id or app is simply not found.
    assert await gateway.call("DELETE", f"/account/api/devices/{phone.device}", device=other) == (
        404,
        {"error": "not_found", "reason": "no such device"},
    )
    assert await gateway.call("DELETE", "/account/api/apps/notes", device=other) == (
        404,
        {"error": "not_found", "reason": "no such app"},
    )

    assert await gateway.call("DELETE", "/account/api/apps/notes", device=phone) == (
        200,
        {"ok": True},
    )
    assert (await gateway.call("GET", "/account/api/apps", device=laptop))[1] == []
    status, _ = await gateway.peek("GET", f"/{gateway.upstream_db(laptop, 'notes')}")
    assert status == 404

    assert (await gateway.call("DELETE", f"/account/api/devices/{phone.device}", device=laptop))[
        0
    ] == 200
    assert await gateway.call("GET", "/account/api/devices", device=phone) == (
        401,
        {"error": "unauthorized", "reason": "invalid or revoked token"},
    )

    assert (await gateway.call("PUT", "/db/notes/", device=laptop))[0] == 201
    assert await gateway.call("DELETE", "/account/api", device=laptop) == (200, {"ok": True})
    assert (await gateway.call("GET", "/account/api", device=laptop))[0] == 401
    status, _ = await gateway.peek("GET", f"/{gateway.upstream_db(laptop, 'notes')}")
    assert status == 404
    assert (await gateway.call("GET", "/account/api", device=other))[0] == 200


async def test_requires_a_device_token(gateway: GatewayHarness) -> None:
    assert await gateway.call("GET", "/account/api/apps") == (
        401,
        {"error": "unauthorized", "reason": "authentication required"},
    )


async def test_apps_show_the_quota_and_what_counts_against_it(
    make_gateway: Any, gateway_upstream: GatewayTarget
) -> None:
    skip_byte_quotas_on_pouchdb_server(gateway_upstream)
    gateway: GatewayHarness = await make_gateway(quota_docs=10, quota_bytes=1_000_000)
    laptop = await gateway.new_device(name="laptop")
    assert (await gateway.call("PUT", "/db/notes/", device=laptop))[0] == 201
    for n in range(2):
        doc = {"e2e": "x" * 1000}
        assert (await gateway.call("PUT", f"/db/notes/n{n}", device=laptop, json=doc))[0] == 201
    _, apps = await gateway.call("GET", "/account/api/apps", device=laptop)
    quota = apps[0]["quota"]
    assert (quota["docs"], quota["bytes"], quota["docs_used"]) == (10, 1_000_000, 2)
    # pouchdb-server reports no sizes, so only the checkpoints' tally would count there.
    floor = 0 if gateway.upstream.kind == "pouchdb-server" else 2_000
    assert floor <= quota["bytes_used"] < 1_000_000

    unlimited: GatewayHarness = await make_gateway()
    phone = await unlimited.new_device(name="phone")
    assert (await unlimited.call("PUT", "/db/notes/", device=phone))[0] == 201
    _, apps = await unlimited.call("GET", "/account/api/apps", device=phone)
    assert apps[0]["quota"] is None
