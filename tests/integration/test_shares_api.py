"""Share links through ``/shares/api`` and ``/s/<id>/data``, on every upstream: the server keeps
only the sealed copy; dead links of every kind answer alike; shares go with app and account."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from encryption_plugin.shares import SharedNote, new_share_key, open_share, seal_share
from gateway.shares import SHARES
from tests.harness import Device, GatewayHarness
from tests.integration.test_cli import _cli, _use_settings_of

MARKER = "marker-7f3a9c-the-secret-plan"
DEAD = {"error": "not_found", "reason": "this link has expired, was revoked, or never existed"}


async def _share(
    gateway: GatewayHarness, device: Device, key: str, **extra: object
) -> dict[str, str]:
    envelope = seal_share(key, SharedNote("plan.md", f"# Plan\n\n{MARKER}"))
    status, body = await gateway.call(
        "POST", "/shares/api", device=device, json={"e2e": envelope, "app": "notes", **extra}
    )
    assert status == 201, body
    return dict(body)


async def _provisioned(gateway: GatewayHarness) -> Device:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes/", device=device))[0] == 201
    return device


async def test_a_share_round_trip_holds_only_ciphertext(gateway: GatewayHarness) -> None:
    owner = await _provisioned(gateway)
    key = new_share_key()
    made = await _share(gateway, owner, key, expires_in=3600)
    assert set(made) == {"id", "url", "expires"} and made["url"] == f"/s/{made['id']}"

    status, copy = await gateway.call("GET", f"/s/{made['id']}/data")
    assert status == 200
    assert open_share(key, copy["e2e"]).text.endswith(MARKER)
    assert copy["expires"] == made["expires"] and copy["burn_after_reading"] is False

    # What the upstream stores: the sealed copy and bookkeeping, no marker and no key.
    records = gateway.settings.records_db
    for doc_id in (f"share:{made['id']}", f"shareof:{owner.user}:{made['id']}"):
        status, stored = await gateway.peek("GET", f"/{records}/{doc_id}")
        assert status == 200, doc_id
        assert MARKER not in str(stored) and key not in str(stored)

    status, listed = await gateway.call("GET", "/shares/api", device=owner)
    assert status == 200
    assert [s["id"] for s in listed] == [made["id"]]
    assert set(listed[0]) == {
        "id",
        "app",
        "size",
        "created",
        "expires",
        "burn_after_reading",
        "device",
    }

    # Re-sealing (the note changed) is the owner's alone; the link then shows the new text.
    resealed = seal_share(key, SharedNote("plan.md", "v2"))
    stranger = await _provisioned(gateway)
    status, _ = await gateway.call(
        "PUT", f"/shares/api/{made['id']}", device=stranger, json={"e2e": resealed}
    )
    assert status == 404
    status, _ = await gateway.call(
        "PUT", f"/shares/api/{made['id']}", device=owner, json={"e2e": resealed}
    )
    assert status == 200
    copy = (await gateway.call("GET", f"/s/{made['id']}/data"))[1]
    assert open_share(key, copy["e2e"]).text == "v2"

    assert (await gateway.call("DELETE", f"/shares/api/{made['id']}", device=stranger))[0] == 404
    assert await gateway.call("DELETE", f"/shares/api/{made['id']}", device=owner) == (
        200,
        {"ok": True},
    )
    assert await gateway.call("GET", f"/s/{made['id']}/data") == (404, DEAD)
    assert (await gateway.call("GET", "/shares/api", device=owner))[1] == []


async def test_expired_revoked_burnt_and_unknown_links_answer_alike(
    gateway: GatewayHarness,
) -> None:
    owner = await _provisioned(gateway)
    key = new_share_key()
    revoked = await _share(gateway, owner, key)
    await gateway.call("DELETE", f"/shares/api/{revoked['id']}", device=owner)
    expired = await gateway.app[SHARES].create(
        owner.user, "notes", seal_share(key, SharedNote("a", "b")), time.time() - 1, False
    )
    burnt = await _share(gateway, owner, key, burn_after_reading=True)
    assert (await gateway.call("GET", f"/s/{burnt['id']}/data"))[0] == 200

    for dead in (revoked["id"], expired.id, burnt["id"], "never-issued-0123456789"):
        assert await gateway.call("GET", f"/s/{dead}/data") == (404, DEAD), dead
    # The expired one was deleted when asked for; the burnt one is gone from the owner's list.
    assert (await gateway.call("GET", "/shares/api", device=owner))[1] == []


async def test_shares_go_with_the_app_and_the_account(gateway: GatewayHarness) -> None:
    owner = await _provisioned(gateway)
    key = new_share_key()
    first = await _share(gateway, owner, key)
    assert (await gateway.call("DELETE", "/account/api/apps/notes", device=owner))[0] == 200
    assert (await gateway.call("GET", f"/s/{first['id']}/data"))[0] == 404

    assert (await gateway.call("PUT", "/db/notes/", device=owner))[0] == 201
    through_db = await _share(gateway, owner, key)
    assert (await gateway.call("DELETE", "/db/notes/", device=owner))[0] == 200
    assert (await gateway.call("GET", f"/s/{through_db['id']}/data"))[0] == 404

    assert (await gateway.call("PUT", "/db/notes/", device=owner))[0] == 201
    second = await _share(gateway, owner, key)
    assert (await gateway.call("DELETE", "/account/api", device=owner))[0] == 200
    assert (await gateway.call("GET", f"/s/{second['id']}/data"))[0] == 404
    records = gateway.settings.records_db
    status, _ = await gateway.peek("GET", f"/{records}/shareof:{owner.user}:{second['id']}")
    assert status == 404


async def test_shares_are_bounded(make_gateway: object) -> None:
    gateway = await make_gateway(  # type: ignore[operator]
        shares_per_user=2, share_max_bytes=2048, share_fetches_per_minute=3
    )
    owner = await _provisioned(gateway)
    key = new_share_key()
    made = await _share(gateway, owner, key)
    await _share(gateway, owner, key)
    envelope = seal_share(key, SharedNote("a", "b"))
    status, body = await gateway.call(
        "POST", "/shares/api", device=owner, json={"e2e": envelope, "app": "notes"}
    )
    assert (status, body["error"]) == (403, "forbidden")

    big = seal_share(key, SharedNote("a", "x" * 4000))
    await gateway.call("DELETE", f"/shares/api/{made['id']}", device=owner)
    status, body = await gateway.call(
        "POST", "/shares/api", device=owner, json={"e2e": big, "app": "notes"}
    )
    assert (status, body["error"]) == (413, "too_large")
    status, body = await gateway.call(
        "POST", "/shares/api", device=owner, json={"e2e": "plain text", "app": "notes"}
    )
    assert (status, body["error"]) == (400, "bad_request")

    for _ in range(3):
        assert (await gateway.call("GET", "/s/unknown-id-000000000000/data"))[0] == 404
    status, body = await gateway.call("GET", "/s/unknown-id-000000000000")
    assert (status, body["error"]) == (429, "too_many_requests")


async def test_the_page_is_one_static_file_with_a_strict_policy(gateway: GatewayHarness) -> None:
    async with gateway.session.get(f"{gateway.url}/s/anything-at-all") as resp:
        assert resp.status == 200
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert "unsafe-inline" not in csp
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        page = await resp.text()
    assert "<script>" not in page and "http://" not in page and "https://" not in page


async def test_expired_shares_are_swept(gateway: GatewayHarness) -> None:
    owner = await _provisioned(gateway)
    key = new_share_key()
    live = await _share(gateway, owner, key)
    store = gateway.app[SHARES]
    expired = await store.create(
        owner.user, "notes", seal_share(key, SharedNote("a", "b")), time.time() - 1, False
    )
    assert await store.sweep_expired() == 1
    records = gateway.settings.records_db
    for doc_id in (f"share:{expired.id}", f"shareof:{owner.user}:{expired.id}"):
        assert (await gateway.peek("GET", f"/{records}/{doc_id}"))[0] == 404
    assert (await gateway.call("GET", f"/s/{live['id']}/data"))[0] == 200


async def test_an_admin_removing_the_account_removes_its_shares(
    gateway: GatewayHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await _provisioned(gateway)
    made = await _share(gateway, owner, new_share_key())
    _use_settings_of(gateway, monkeypatch)
    assert await _cli("users", "remove", owner.user) == 0
    assert (await gateway.call("GET", f"/s/{made['id']}/data"))[0] == 404
    records = gateway.settings.records_db
    status, _ = await gateway.peek("GET", f"/{records}/shareof:{owner.user}:{made['id']}")
    assert status == 404


async def test_head_never_uses_up_a_burn_after_reading_link(gateway: GatewayHarness) -> None:
    """Link checkers and previews send HEAD: it answers as GET would, without the copy, and
    leaves the one read to the person the link was for."""
    owner = await _provisioned(gateway)
    key = new_share_key()
    burn = await _share(gateway, owner, key, burn_after_reading=True)
    for _ in range(3):
        async with gateway.session.head(f"{gateway.url}/s/{burn['id']}/data") as resp:
            assert resp.status == 200
    status, body = await gateway.call("GET", f"/s/{burn['id']}/data")
    assert status == 200 and open_share(key, body["e2e"]).text.endswith(MARKER)
    async with gateway.session.head(f"{gateway.url}/s/{burn['id']}/data") as resp:
        assert resp.status == 404


async def test_the_share_limit_holds_for_parallel_creations_through_two_replicas(
    make_gateway: Any,
) -> None:
    """60 creations at once, half through each of two gateways on one upstream, under a limit
    of 10: never more than 10 links (main let 27-60 through)."""
    one = await make_gateway(shares_per_user=10)
    two = await make_gateway(shares_per_user=10, records_db=one.settings.records_db)
    owner = await _provisioned(one)
    envelope = seal_share(new_share_key(), SharedNote("a", "b"))

    async def create(gateway: GatewayHarness) -> int:
        status, _ = await gateway.call(
            "POST", "/shares/api", device=owner, json={"e2e": envelope, "app": "notes"}
        )
        return status

    statuses = await asyncio.gather(*(create(one if i % 2 else two) for i in range(60)))
    assert set(statuses) <= {201, 403}, statuses
    status, listed = await one.call("GET", "/shares/api", device=owner)
    assert status == 200
    assert len(listed) == statuses.count(201) <= 10, (len(listed), statuses.count(201))


async def test_links_belong_to_the_account_and_say_which_device_made_them(
    gateway: GatewayHarness,
) -> None:
    """Revoking a device leaves the links it made live (docs/share-links.md: links belong to
    the account); the listing names the device that made each, so they can be found and
    revoked from another device."""
    phone = await _provisioned(gateway)
    laptop = await gateway.new_device(same_user_as=phone, name="laptop")
    key = new_share_key()
    made = await _share(gateway, phone, key)
    await gateway.revoke(phone)
    status, body = await gateway.call("GET", f"/s/{made['id']}/data")
    assert status == 200 and open_share(key, body["e2e"]).text.endswith(MARKER)
    status, listed = await gateway.call("GET", "/shares/api", device=laptop)
    assert status == 200
    assert [(s["id"], s["device"]) for s in listed] == [(made["id"], phone.device)]
    assert (await gateway.call("DELETE", f"/shares/api/{made['id']}", device=laptop))[0] == 200
    assert (await gateway.call("GET", f"/s/{made['id']}/data"))[0] == 404
