"""Parallel limit-bound requests through two replicas, generated (issue 25, deliver 7).

Two gateways on one upstream and one records database, every per-user limit set low. Each
example, Hypothesis draws a mix: how many of each request that takes or gives back a place
(creating and deleting apps, signing devices in and revoking them, creating and revoking share
links, opening live feeds) and which replica each goes to; all are sent at once. After each:

- no 5xx (none is documented for these, the upstream being up), every error in CouchDB's shape;
- no limit exceeded: the account's apps, devices and links as listed, and its live feeds both
  as answered (open at once) and as their leases count them across the two replicas.

``COUCHGATE_FUZZ_EXAMPLES`` / 20 examples per upstream (20 by default).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encryption_plugin.shares import SharedNote, new_share_key, seal_share
from gateway import keys
from gateway.limits.leases import FEED_LEASES, KIND
from tests.fuzz.test_http_boundary import EXAMPLES, FUZZ
from tests.harness import Device, GatewayHarness, MakeGateway

FUZZ_CONCURRENT = settings(FUZZ, max_examples=max(1, EXAMPLES // 20))
MOST = 3
LIMITS = {
    "apps_per_user": MOST,
    "devices_per_user": MOST,
    "shares_per_user": MOST,
    "feeds_per_user": MOST,
}
LIVE = "/db/notes/_changes?feed=continuous&heartbeat=1000&since=now"
KINDS = ["app", "app_delete", "device", "device_revoke", "share", "share_delete", "feed"]
APP_NAMES = [f"c{i}" for i in range(5)]


@dataclass
class Pair:
    one: GatewayHarness
    two: GatewayHarness
    owner: Device
    envelope: str
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    examples: int = 0

    def replica(self, index: int) -> GatewayHarness:
        return (self.one, self.two)[index]

    def note(self, kind: str, status: int) -> None:
        counts = self.statuses.setdefault(kind, {})
        counts[status] = counts.get(status, 0) + 1


@pytest.fixture
async def pair(make_gateway: MakeGateway) -> AsyncIterator[Pair]:
    one = await make_gateway(**LIMITS)
    two = await make_gateway(**LIMITS, records_db=one.settings.records_db)
    owner = await one.new_device()
    assert (await one.call("PUT", "/db/notes", device=owner))[0] == 201
    made = Pair(one, two, owner, seal_share(new_share_key(), SharedNote("a", "b")))
    yield made
    print(
        f"\nfuzz concurrency [{one.upstream.kind}]: {made.examples} examples, "
        f"statuses {made.statuses}"
    )


@FUZZ_CONCURRENT
@given(data=st.data())
async def test_parallel_limit_bound_requests_through_two_replicas_pass_no_limit(
    pair: Pair, data: st.DataObject
) -> None:
    mix = data.draw(
        st.lists(
            st.tuples(st.sampled_from(KINDS), st.integers(0, 1), st.integers(0, 9)),
            min_size=1,
            max_size=16,
        ),
        label="mix",
    )
    owner, one = pair.owner, pair.one
    identities = one.app[keys.IDENTITIES]
    devices = [
        d.device for d in await identities.devices.of(owner.user) if d.device != owner.device
    ]
    status, shares = await one.call("GET", "/shares/api", device=owner)
    assert status == 200, shares
    feeds: list[aiohttp.ClientResponse] = []

    async def open_feed(gw: GatewayHarness) -> tuple[int, Any]:
        response = await gw.session.get(gw.url + LIVE, headers=owner.headers)
        if response.status == 200:
            feeds.append(response)
            return 200, None
        body = await response.json()
        response.close()
        return response.status, body

    async def sign_in(gw: GatewayHarness) -> tuple[int, Any]:
        code, _ = await identities.grants.create("enroll", owner.user)
        return await gw.call("POST", "/auth/enroll", json={"code": code, "device": "fz"})

    def request(kind: str, gw: GatewayHarness, pick: int) -> Awaitable[tuple[int, Any]]:
        app = APP_NAMES[pick % len(APP_NAMES)]
        calls: dict[str, Callable[[], Awaitable[tuple[int, Any]]]] = {
            "app": lambda: gw.call("PUT", f"/db/{app}", device=owner),
            "app_delete": lambda: gw.call("DELETE", f"/db/{app}", device=owner),
            "device": lambda: sign_in(gw),
            "device_revoke": lambda: gw.call(
                "DELETE",
                f"/auth/devices/{devices[pick % len(devices)] if devices else 'none'}",
                device=owner,
            ),
            "share": lambda: gw.call(
                "POST",
                "/shares/api",
                device=owner,
                json={"e2e": pair.envelope, "app": "notes", "expires_in": 600},
            ),
            "share_delete": lambda: gw.call(
                "DELETE",
                f"/shares/api/{shares[pick % len(shares)]['id'] if shares else 'none'}",
                device=owner,
            ),
            "feed": lambda: open_feed(gw),
        }
        return calls[kind]()

    try:
        answers = await asyncio.gather(
            *(request(kind, pair.replica(side), pick) for kind, side, pick in mix)
        )
        for (kind, _, _), (status, body) in zip(mix, answers, strict=True):
            pair.note(kind, status)
            assert status < 500, (kind, status, body, mix)
            if status >= 400:
                assert isinstance(body, dict) and set(body) == {"error", "reason"}, body
        opened = sum(
            1
            for (kind, _, _), (s, _) in zip(mix, answers, strict=True)
            if kind == "feed" and s == 200
        )
        assert opened <= MOST, mix
        assert len(await identities.claims.held(owner.user, KIND)) <= MOST, mix
        me = (await one.call("GET", "/account/api", device=owner))[1]
        assert len(me["apps"]) <= MOST, (me, mix)
        assert len(await identities.devices.of(owner.user)) <= MOST, mix
        listed = (await pair.two.call("GET", "/shares/api", device=owner))[1]
        assert len(listed) <= MOST, (listed, mix)
    finally:
        for response in feeds:
            response.close()
    # The feeds' places as the renewal timer leaves them a minute on: what no feed uses is
    # given back (it keeps what open feeds still hold, so the limit stays in force).
    for _ in range(2):
        for gw in (pair.one, pair.two):
            await gw.app[FEED_LEASES].renew()
    pair.examples += 1
