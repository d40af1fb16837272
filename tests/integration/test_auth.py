"""The sign-in handshake over real HTTP, with a real SMTP server and a real upstream."""

from __future__ import annotations

import asyncio
import email
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from gateway import keys
from gateway.auth.records.challenges import MAX_ATTEMPTS
from gateway.auth.records.devices import RECENT_DEVICE_S
from tests.harness import GatewayHarness, MakeGateway
from tests.upstreams import free_port

UNAUTHORIZED_CODE = {"error": "unauthorized", "reason": "invalid or expired code"}


@dataclass
class Inbox:
    """What a real SMTP server (aiosmtpd, on loopback) received."""

    messages: list[email.message.Message] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.arrived:
            self.messages.append(email.message_from_bytes(envelope.content))
            self.arrived.notify_all()
        return "250 OK"

    async def code_for(self, address: str, within: float = 10) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            for msg in reversed(self.messages):
                if msg["To"] == address:
                    payload = msg.get_payload()
                    assert isinstance(payload, str), payload  # one text part, not multipart
                    match = re.search(r"\b(\d{6})\b", payload)
                    assert match, payload
                    return match.group(1)
            await asyncio.sleep(0.05)
        raise AssertionError(f"no email for {address}")


def smtp_settings(port: int) -> dict[str, object]:
    """A gateway that sends its codes to the test's own SMTP server."""
    return {
        "email_delivery": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_tls": "none",
        "smtp_from": "couchgate@test.invalid",
    }


@pytest.fixture
def smtp() -> Any:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest.fixture
async def mail_gateway(
    make_gateway: MakeGateway, smtp: Any
) -> AsyncIterator[tuple[GatewayHarness, Inbox]]:
    inbox, port = smtp
    gw = await make_gateway(
        **smtp_settings(port),
        registration="open",
    )
    yield gw, inbox


async def sign_in(gw: GatewayHarness, inbox: Inbox, address: str) -> dict[str, Any]:
    status, body = await gw.call("POST", "/auth/code", json={"email": address})
    assert status == 202, body
    code = await inbox.code_for(address)
    status, token = await gw.call(
        "POST",
        "/auth/token",
        json={"challenge": body["challenge"], "code": code, "device": "laptop"},
    )
    assert status == 201, token
    return dict(token)


async def test_email_code_signs_in_and_the_token_works(mail_gateway: Any) -> None:
    gw, inbox = mail_gateway
    token = await sign_in(gw, inbox, "alice@example.org")
    assert set(token) == {"token", "user", "device"}
    status, me = await gw.call(
        "GET", "/auth/me", headers={"Authorization": f"Bearer {token['token']}"}
    )
    assert (status, me) == (200, {"user": token["user"], "device": token["device"]})
    # The same address signs in to the same account again, as a new device.
    again = await sign_in(gw, inbox, "ALICE@example.org")
    assert again["user"] == token["user"] and again["device"] != token["device"]


async def test_the_address_is_stored_only_as_an_hmac(mail_gateway: Any) -> None:
    gw, inbox = mail_gateway
    await sign_in(gw, inbox, "carol.secret@example.org")
    status, rows = await gw.peek("GET", f"/{gw.settings.records_db}/_all_docs?include_docs=true")
    assert status == 200
    assert "carol.secret" not in repr(rows) and len(rows["rows"]) >= 3


async def test_wrong_unknown_and_used_challenges_all_get_the_same_401(mail_gateway: Any) -> None:
    gw, inbox = mail_gateway
    status, body = await gw.call("POST", "/auth/code", json={"email": "bob@example.org"})
    assert status == 202, body
    code = await inbox.code_for("bob@example.org")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    answers = [
        await gw.call(
            "POST",
            "/auth/token",
            json={"challenge": body["challenge"], "code": wrong, "device": "d"},
        ),
        await gw.call(
            "POST",
            "/auth/token",
            json={"challenge": "forged.challenge.x", "code": code, "device": "d"},
        ),
    ]
    ok = await gw.call(
        "POST", "/auth/token", json={"challenge": body["challenge"], "code": code, "device": "d"}
    )
    assert ok[0] == 201
    answers.append(
        await gw.call(
            "POST",
            "/auth/token",
            json={"challenge": body["challenge"], "code": code, "device": "d"},
        )
    )
    assert answers == [(401, UNAUTHORIZED_CODE)] * 3


async def test_attempts_are_limited_per_challenge(mail_gateway: Any) -> None:
    gw, inbox = mail_gateway
    status, body = await gw.call("POST", "/auth/code", json={"email": "eve@example.org"})
    assert status == 202, body
    code = await inbox.code_for("eve@example.org")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(MAX_ATTEMPTS):
        assert (
            await gw.call(
                "POST",
                "/auth/token",
                json={"challenge": body["challenge"], "code": wrong, "device": "d"},
            )
        )[0] == 401
    # The right code no longer helps: the challenge is spent.
    assert await gw.call(
        "POST", "/auth/token", json={"challenge": body["challenge"], "code": code, "device": "d"}
    ) == (401, UNAUTHORIZED_CODE)


async def test_attempts_are_counted_upstream_so_the_limit_holds_across_replicas(
    make_gateway: MakeGateway, smtp: Any
) -> None:
    inbox, port = smtp
    first = await make_gateway(
        **smtp_settings(port),
        registration="open",
    )
    second = await make_gateway(
        **smtp_settings(port),
        registration="open",
        records_db=first.settings.records_db,
    )
    status, body = await first.call("POST", "/auth/code", json={"email": "mallory@example.org"})
    assert status == 202, body
    code = await inbox.code_for("mallory@example.org")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    replicas = [first, second] * MAX_ATTEMPTS
    for replica in replicas[:MAX_ATTEMPTS]:
        await replica.call(
            "POST",
            "/auth/token",
            json={"challenge": body["challenge"], "code": wrong, "device": "d"},
        )
    assert (
        await second.call(
            "POST",
            "/auth/token",
            json={"challenge": body["challenge"], "code": code, "device": "d"},
        )
    )[0] == 401


@pytest.mark.parametrize(
    ("policy", "allowlist"), [("invite", ""), ("allowlist", "@allowed.example")]
)
async def test_unpermitted_addresses_get_the_same_answer_but_no_code(
    make_gateway: MakeGateway, smtp: Any, policy: str, allowlist: str
) -> None:
    inbox, port = smtp
    gw = await make_gateway(
        **smtp_settings(port),
        registration=policy,
        allowlist=allowlist or None,
    )
    status, body = await gw.call("POST", "/auth/code", json={"email": "stranger@elsewhere.example"})
    assert status == 202 and set(body) == {"challenge"}
    # An address that has an account (added by an admin) does get a code under every policy.
    await gw.enrollment_code("member@elsewhere.example")
    status, member = await gw.call("POST", "/auth/code", json={"email": "member@elsewhere.example"})
    assert status == 202 and set(member) == {"challenge"}
    await inbox.code_for("member@elsewhere.example")
    assert all(m["To"] != "stranger@elsewhere.example" for m in inbox.messages)
    if policy == "allowlist":
        await gw.call("POST", "/auth/code", json={"email": "new@allowed.example"})
        await inbox.code_for("new@allowed.example")


async def test_enrollment_code_is_single_use(gateway: GatewayHarness) -> None:
    uid, code = await gateway.enrollment_code("dana@example.org")
    status, body = await gateway.call(
        "POST", "/auth/enroll", json={"code": code.lower(), "device": "phone"}
    )
    assert status == 201 and body["user"] == uid
    assert await gateway.call("POST", "/auth/enroll", json={"code": code, "device": "phone"}) == (
        401,
        UNAUTHORIZED_CODE,
    )


async def test_link_pairs_a_second_device_of_the_same_user_once(gateway: GatewayHarness) -> None:
    first = await gateway.new_device()
    status, link = await gateway.call("POST", "/auth/link", device=first)
    assert status == 201 and set(link) == {"code", "expires"}
    status, second = await gateway.call(
        "POST", "/auth/link/redeem", json={"code": link["code"], "device": "tablet"}
    )
    assert status == 201 and second["user"] == first.user and second["device"] != first.device
    assert (
        await gateway.call("POST", "/auth/link/redeem", json={"code": link["code"], "device": "x"})
    )[0] == 401
    assert (await gateway.call("POST", "/auth/link"))[0] == 401


async def test_devices_list_and_revoke_takes_effect_at_once(gateway: GatewayHarness) -> None:
    first = await gateway.new_device(name="laptop")
    second = await gateway.new_device(same_user_as=first, name="phone")
    status, devices = await gateway.call("GET", "/auth/devices", device=first)
    assert status == 200
    assert sorted(d["name"] for d in devices) == ["laptop", "phone"]
    assert all(set(d) == {"id", "name", "created", "last_seen"} for d in devices)
    assert (await gateway.call("GET", "/auth/me", device=second))[0] == 200  # seen just now
    assert (await gateway.call("DELETE", f"/auth/devices/{second.device}", device=first))[0] == 200
    assert await gateway.call("GET", "/auth/me", device=second) == (
        401,
        {"error": "unauthorized", "reason": "invalid or revoked token"},
    )
    assert (await gateway.call("GET", "/auth/me", device=first))[0] == 200
    assert (await gateway.call("DELETE", f"/auth/devices/{second.device}", device=first))[0] == 404


async def test_another_users_device_cannot_be_revoked(gateway: GatewayHarness) -> None:
    alice = await gateway.new_device()
    bob = await gateway.new_device()
    assert await gateway.call("DELETE", f"/auth/devices/{alice.device}", device=bob) == (
        404,
        {"error": "not_found", "reason": "no such device"},
    )
    assert (await gateway.call("GET", "/auth/me", device=alice))[0] == 200


async def test_basic_auth_with_the_token_as_password(gateway: GatewayHarness) -> None:
    import base64

    device = await gateway.new_device()
    basic = base64.b64encode(f"whoever:{device.token}".encode()).decode()
    status, me = await gateway.call("GET", "/auth/me", headers={"Authorization": f"Basic {basic}"})
    assert (status, me["user"]) == (200, device.user)


async def test_a_token_naming_another_device_is_refused_even_just_after_its_secret_was_used(
    gateway: GatewayHarness,
) -> None:
    """The lookups checked in the last seconds are found by the secret's hash: a token made of
    one's own secret and another account's ids passed as one's own while that lookup was
    recent (the fuzz suite's account test deleted its own account so, with the victim's ids)."""
    mine, theirs = await gateway.new_device(), await gateway.new_device()
    assert (await gateway.call("GET", "/auth/me", device=mine))[0] == 200
    forged = f"cg1.{theirs.user}.{theirs.device}.{mine.token.rsplit('.', 1)[1]}"
    status, body = await gateway.call(
        "DELETE", "/account/api", headers={"Authorization": f"Bearer {forged}"}
    )
    assert (status, body["error"]) == (401, "unauthorized"), body
    assert (await gateway.call("GET", "/auth/me", device=mine))[0] == 200
    assert (await gateway.call("GET", "/auth/me", device=theirs))[0] == 200


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/auth/code", {"email": "not-an-address"}, 400, "bad_request"),
        ("/auth/code", {}, 400, "bad_request"),
        ("/auth/code", [1], 400, "bad_request"),
        ("/auth/token", {"challenge": "x", "code": "1"}, 400, "bad_request"),
        ("/auth/enroll", {"code": "x", "device": "d" * 101}, 400, "bad_request"),
    ],
)
async def test_bad_input_gets_a_couchdb_shaped_error(
    gateway: GatewayHarness, path: str, body: Any, status: int, error: str
) -> None:
    got_status, got = await gateway.call("POST", path, json=body)
    assert got_status == status and got["error"] == error and isinstance(got["reason"], str)


async def test_invalid_json_and_oversized_bodies(gateway: GatewayHarness) -> None:
    assert await gateway.call(
        "POST", "/auth/code", data=b"{nope", headers={"Content-Type": "application/json"}
    ) == (400, {"error": "bad_request", "reason": "invalid UTF-8 JSON"})
    status, body = await gateway.call(
        "POST", "/auth/code", data=b"x" * 20000, headers={"Content-Type": "application/json"}
    )
    assert (status, body["error"]) == (413, "too_large")


async def test_expired_challenges_and_codes_are_swept(gateway: GatewayHarness) -> None:
    identities = gateway.app[keys.IDENTITIES]
    await identities.challenges.create("old-one", "h", "c", True)
    _, code = await gateway.enrollment_code()
    status, doc = await gateway.peek("GET", f"/{gateway.settings.records_db}/challenge:old-one")
    assert status == 200
    doc["expires"] = 0
    assert (await gateway.peek("PUT", f"/{gateway.settings.records_db}/challenge:old-one", doc))[
        0
    ] == 201
    assert await identities.sweep_expired() == 1
    assert (await gateway.peek("GET", f"/{gateway.settings.records_db}/challenge:old-one"))[
        0
    ] == 404
    # The unexpired enrollment code was left alone and still works.
    assert (await gateway.call("POST", "/auth/enroll", json={"code": code, "device": "d"}))[
        0
    ] == 201


async def test_a_revocation_through_another_replica_is_honoured_here_within_a_poll(
    make_gateway: MakeGateway,
) -> None:
    first = await make_gateway()
    second = await make_gateway(records_db=first.settings.records_db)
    laptop = await first.new_device()
    phone = await first.new_device(same_user_as=laptop)
    assert (await first.call("GET", "/auth/me", device=phone))[0] == 200  # looked up, remembered
    assert (await second.call("DELETE", f"/auth/devices/{phone.device}", device=laptop))[0] == 200
    loop = asyncio.get_running_loop()
    # Sooner than the remembered lookup would expire: the records feed said so. The embedded
    # store is one process's (replicas need CouchDB): two gateways on one store directory share
    # its file but not its wake-ups, so there only the lookup's expiry bounds it.
    embedded = first.upstream.kind == "embedded"
    deadline = loop.time() + (RECENT_DEVICE_S + 1 if embedded else RECENT_DEVICE_S * 0.75)
    while (await first.call("GET", "/auth/me", device=phone))[0] != 401:
        assert loop.time() < deadline, "the first replica still accepts a revoked device"
        await asyncio.sleep(0.05)


async def test_the_device_limit_holds_for_parallel_sign_ins_through_two_replicas(
    make_gateway: MakeGateway,
) -> None:
    """30 enrollment codes of one account redeemed at once, half through each of two gateways
    on one upstream, under a limit of 5 devices: never more than 5 devices."""
    first = await make_gateway(devices_per_user=5)
    second = await make_gateway(devices_per_user=5, records_db=first.settings.records_db)
    uid, _ = await first.enrollment_code()
    identities = first.app[keys.IDENTITIES]
    codes = [(await identities.grants.create("enroll", uid))[0] for _ in range(30)]
    answers = await asyncio.gather(
        *(
            (first, second)[i % 2].call(
                "POST", "/auth/enroll", json={"code": code, "device": f"d{i}"}
            )
            for i, code in enumerate(codes)
        )
    )
    assert {status for status, _ in answers} <= {201, 403}, answers
    signed_in = sum(1 for status, _ in answers if status == 201)
    devices = await identities.devices.of(uid)
    assert len(devices) == signed_in <= 5, (len(devices), signed_in)
