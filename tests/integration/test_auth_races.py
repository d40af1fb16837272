"""Parallel redemptions of one sign-in challenge (issue 9, finding 1): 12 to 30 at once crashed
pouchdb-server through concurrent updates of one records document."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.ops.metrics import METRICS
from tests.harness import GatewayHarness
from tests.integration.test_auth import Inbox, smtp, smtp_settings  # noqa: F401 - fixture

PARALLEL = 30


def upstream_calls(gw: Any, method: str) -> float:
    """How many upstream calls of ``method`` the gateway made (its own metrics count them)."""
    value = gw.app[METRICS].registry.get_sample_value(
        "couchgate_upstream_duration_seconds_count", {"method": method}
    )
    return float(value or 0)


async def test_parallel_redemptions_of_one_challenge_are_one_at_a_time(
    make_gateway: Any,
    smtp: tuple[Inbox, int],  # noqa: F811
) -> None:
    inbox, port = smtp
    # Sixty-two sign-in attempts from one address: more than the per-IP budget (tested in
    # test_limits.py), which is not what this test is about.
    gw: GatewayHarness = await make_gateway(
        **smtp_settings(port), registration="open", ip_signins_per_hour=0
    )
    status, body = await gw.call("POST", "/auth/code", json={"email": "race@example.org"})
    assert status == 202, body
    code = await inbox.code_for("race@example.org")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    guesses = await asyncio.gather(
        *(
            gw.call(
                "POST",
                "/auth/token",
                json={"challenge": body["challenge"], "code": wrong, "device": f"d{i}"},
            )
            for i in range(PARALLEL)
        )
    )
    assert {status for status, _ in guesses} <= {401, 429}, guesses
    status, _ = await gw.peek("GET", "/")
    assert status == 200
    status, body = await gw.call("POST", "/auth/code", json={"email": "race2@example.org"})
    assert status == 202, body
    code = await inbox.code_for("race2@example.org")
    puts = upstream_calls(gw, "PUT")
    answers = await asyncio.gather(
        *(
            gw.call(
                "POST",
                "/auth/token",
                json={"challenge": body["challenge"], "code": code, "device": f"d{i}"},
            )
            for i in range(PARALLEL)
        )
    )
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [401] * (PARALLEL - 1), answers
    # One at a time: one attempt saved (then consumed), the others find the challenge gone. In
    # parallel every redeemer wrote the record (and lost a conflict), which is what broke
    # pouchdb-server. Signing the winner in writes four records more (email, user, device, and
    # the device's place in the account's claims record: gateway/auth/records/claims.py).
    assert upstream_calls(gw, "PUT") - puts <= 5
    status, _ = await gw.peek("GET", "/")
    assert status == 200
    token = next(answer for status, answer in answers if status == 201)
    status, me = await gw.call(
        "GET", "/auth/me", headers={"Authorization": f"Bearer {token['token']}"}
    )
    assert status == 200, me
