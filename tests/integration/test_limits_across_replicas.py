"""Every per-user limit under parallel requests through two replicas (issue 25, deliver 3).

One pattern holds them all (gateway/auth/records/claims.py): what a limit counts is listed in
one record of the account, checked and taken in one revision. So in one burst of app creations,
sign-ins, share links and live feeds, half through each of two gateways on one upstream, exactly
the limit of each passes: never more (main opened a user's live feeds up to the limit on every
replica), and never fewer while a place is free (write-then-count refused some of those).
Live feeds hold leases: given back when the feed ends, and lapsing when the replica that held
them dies without giving them back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp

from encryption_plugin.shares import SharedNote, new_share_key, seal_share
from gateway import keys
from gateway.auth.records.claims import Claims
from gateway.errors import TooManyRequests
from gateway.limits.leases import FEED_LEASES, KIND
from tests.harness import Device, GatewayHarness, MakeGateway

MOST = 4
ASKED = 10
LIVE = "/db/notes/_changes?feed=continuous&heartbeat=1000&since=now"


async def open_feed(
    gateway: GatewayHarness, device: Device, held: list[aiohttp.ClientResponse]
) -> int:
    """Open a live feed; one that opened stays open (in ``held``) until the caller closes it."""
    response = await gateway.session.get(gateway.url + LIVE, headers=device.headers)
    if response.status == 200:
        held.append(response)
    else:
        await response.read()
        response.close()
    return response.status


async def feeds_held(claims: Claims, uid: str) -> int:
    return len(await claims.held(uid, KIND))


async def test_every_per_user_limit_holds_in_one_burst_through_two_replicas(
    make_gateway: MakeGateway,
) -> None:
    limits = {
        "apps_per_user": MOST,
        "devices_per_user": MOST,
        "shares_per_user": MOST,
        "feeds_per_user": MOST,
    }
    one = await make_gateway(**limits)
    two = await make_gateway(**limits, records_db=one.settings.records_db)
    replicas = (one, two)
    owner = await one.new_device()  # the account's first device and first app
    assert (await one.call("PUT", "/db/notes", device=owner))[0] == 201
    identities = one.app[keys.IDENTITIES]
    codes = [(await identities.grants.create("enroll", owner.user))[0] for _ in range(ASKED)]
    envelope = seal_share(new_share_key(), SharedNote("a", "b"))
    feeds: list[aiohttp.ClientResponse] = []

    async def status(call: Awaitable[tuple[int, object]]) -> int:
        return (await call)[0]

    def create_app(i: int) -> Callable[[GatewayHarness], Awaitable[int]]:
        return lambda gw: status(gw.call("PUT", f"/db/race{i}", device=owner))

    def sign_in(code: str) -> Callable[[GatewayHarness], Awaitable[int]]:
        return lambda gw: status(
            gw.call("POST", "/auth/enroll", json={"code": code, "device": "d"})
        )

    burst: dict[str, list[Callable[[GatewayHarness], Awaitable[int]]]] = {
        "apps": [create_app(i) for i in range(ASKED)],
        "devices": [sign_in(code) for code in codes],
        "shares": [
            lambda gw: status(
                gw.call("POST", "/shares/api", device=owner, json={"e2e": envelope, "app": "notes"})
            )
        ]
        * ASKED,
        "feeds": [lambda gw: open_feed(gw, owner, feeds)] * ASKED,
    }
    calls = [(kind, make) for kind, makes in burst.items() for make in makes]
    try:
        answers = await asyncio.gather(
            *(make(replicas[i % 2]) for i, (_, make) in enumerate(calls))
        )
        by_kind: dict[str, list[int]] = {kind: [] for kind in burst}
        for (kind, _), answer in zip(calls, answers, strict=True):
            by_kind[kind].append(answer)
        passed, refused = {"feeds": 200}, {"feeds": 429}
        # The owner's first device and app took one place each before the burst.
        before = {"apps": 1, "devices": 1, "shares": 0, "feeds": 0}
        for kind, statuses in by_kind.items():
            ok, no = passed.get(kind, 201), refused.get(kind, 403)
            assert sorted(statuses) == sorted(
                [ok] * (MOST - before[kind]) + [no] * (ASKED - MOST + before[kind])
            ), (kind, statuses)
        assert len((await one.call("GET", "/account/api", device=owner))[1]["apps"]) == MOST
        assert len(await identities.devices.of(owner.user)) == MOST
        assert len((await two.call("GET", "/shares/api", device=owner))[1]) == MOST
        assert await feeds_held(identities.claims, owner.user) == MOST
    finally:
        for response in feeds:
            response.close()

    # Ended feeds give their places back: each replica's next renewal keeps the leases used
    # since the one before, the one after gives them back (run now rather than waited for).
    deadline = time.time() + 30
    while any(gw.app[FEED_LEASES].held_here(owner.user)[1] for gw in replicas):
        assert time.time() < deadline, "the gateway never saw the closed feeds end"
        await asyncio.sleep(0.1)
    for _ in range(2):
        for gw in replicas:
            await gw.app[FEED_LEASES].renew()
    assert await feeds_held(identities.claims, owner.user) == 0
    again: list[aiohttp.ClientResponse] = []
    try:
        statuses = [await open_feed(two, owner, again) for _ in range(MOST + 1)]
        assert statuses == [200] * MOST + [429], statuses
    finally:
        for response in again:
            response.close()


async def test_a_dead_replicas_feed_leases_lapse(make_gateway: MakeGateway) -> None:
    """Leases a replica took and never renews nor gives back (it died) hold their places until
    they lapse, and no longer: the account is not locked out of live feeds forever."""
    gateway = await make_gateway(feeds_per_user=2)
    owner = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=owner))[0] == 201
    claims = gateway.app[keys.IDENTITIES].claims
    lapse = time.time() + 2
    for key in ("dead-a", "dead-b"):  # what the dead replica left: two leases, soon lapsing
        await claims.claim(owner.user, KIND, key, 2, TooManyRequests(retry_after=1), until=lapse)
    held: list[aiohttp.ClientResponse] = []
    try:
        assert await open_feed(gateway, owner, held) == 429
        deadline = time.time() + 30
        while (opened := await open_feed(gateway, owner, held)) != 200:
            assert opened == 429 and time.time() < deadline, opened
            await asyncio.sleep(0.25)
        assert time.time() >= lapse
        assert await feeds_held(claims, owner.user) == 1  # the lapsed ones are gone
        assert gateway.app[FEED_LEASES].held_here(owner.user) == (1, 1)
    finally:
        for response in held:
            response.close()


async def test_a_place_whose_device_is_gone_is_given_back_at_the_limit(
    make_gateway: MakeGateway,
) -> None:
    """A replica killed between deleting a device's record and giving back its place leaves
    the place taken: the next sign-in that meets the limit finds no such device and takes it."""
    gateway = await make_gateway(devices_per_user=2)
    owner = await gateway.new_device()
    path = f"/{gateway.settings.records_db}/claims:{owner.user}:devices"
    status, record = await gateway.peek("GET", path)
    assert status == 200 and list(record["held"]) == [owner.device], record
    record["held"]["ghost"] = [0, 0]  # taken long ago, its device never written or gone
    assert (await gateway.peek("PUT", path, record))[0] in (201, 202)
    second = await gateway.new_device(same_user_as=owner)
    status, record = await gateway.peek("GET", path)
    assert status == 200 and set(record["held"]) == {owner.device, second.device}, record
    status, link = await gateway.call("POST", "/auth/link", device=owner)
    assert status == 201, link
    third = {"code": link["code"], "device": "third"}
    assert (await gateway.call("POST", "/auth/link/redeem", json=third))[0] == 403
