"""Live feeds per user across replicas: each feed holds a lease, a place under ``feeds_per_user``
in the account's ``claims:<uid>:feeds`` record (gateway/auth/records/claims.py, the pattern every
per-user limit follows), so the limit counts the feeds of every replica.

A lease frees itself LEASE_S after it was last renewed. This replica renews the leases of its
open feeds every RENEW_S, one save per account, so a replica that dies frees its feeds' places
within LEASE_S without anyone releasing them. A feed that ends hands its lease back to this
replica's pool for the account, and the next feed of the account here takes it without a write:
a client's long poll ends and starts again every few seconds, and must not cost two writes each
time. The next renewal gives back the leases no feed used since the one before, so a place
left idle here is free for another replica within RENEW_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from gateway.auth.records.claims import Claims
from gateway.errors import CouchError, TooManyRequests

log = logging.getLogger(__name__)

KIND = "feeds"
LEASE_S = 90.0
RENEW_S = 30.0
RELEASE_WAIT_S = 5.0


@dataclass(slots=True)
class _Pool:
    """One account's leases on this replica: ``busy`` of them held by open feeds (or being
    claimed), the rest idle; ``peak``: the most busy at once since the last renewal."""

    keys: list[str] = field(default_factory=list)
    busy: int = 0
    peak: int = 0


class FeedLeases:
    def __init__(self, claims: Claims, most: int) -> None:
        self._claims = claims
        self.most = most
        self._pools: dict[str, _Pool] = {}

    def _refusal(self) -> CouchError:
        return TooManyRequests(
            f"more than {self.most} live feeds open for this account", retry_after=10
        )

    @contextlib.asynccontextmanager
    async def hold(self, uid: str) -> AsyncIterator[None]:
        """Hold one of ``uid``'s places under the limit for the ``with`` block, or refuse
        with 429. No limit (0): nothing is recorded."""
        if not self.most:
            yield
            return
        pool = self._pools.setdefault(uid, _Pool())
        pool.busy += 1  # taken before any wait, so two feeds never share one idle lease
        pool.peak = max(pool.peak, pool.busy)
        try:
            if pool.busy > len(pool.keys):
                key = secrets.token_hex(8)
                until = time.time() + LEASE_S
                await self._claims.claim(uid, KIND, key, self.most, self._refusal(), until=until)
                pool.keys.append(key)
            yield
        finally:
            pool.busy -= 1
            if not pool.busy and not pool.keys:
                self._pools.pop(uid, None)

    async def renew(self) -> None:
        """Move on every lease a feed used since the last renewal; give back the rest."""
        until = time.time() + LEASE_S
        for uid, pool in list(self._pools.items()):
            kept, idle = pool.keys[: pool.peak], pool.keys[pool.peak :]
            pool.keys, pool.peak = kept, pool.busy
            if not pool.busy and not pool.keys:
                self._pools.pop(uid, None)
            try:
                await self._claims.renew(uid, KIND, kept, until, release=idle)
            except (aiohttp.ClientError, TimeoutError, CouchError) as exc:
                log.warning("renewing live feed leases failed: %s", type(exc).__name__)

    async def renew_forever(self) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            await self.renew()

    async def release_all(self) -> None:
        """At shutdown, once the feeds have ended: give every lease back now rather than when
        it lapses (best effort: they lapse anyway)."""
        pools, self._pools = self._pools, {}
        for uid, pool in pools.items():
            try:
                await asyncio.wait_for(self._claims.release(uid, KIND, pool.keys), RELEASE_WAIT_S)
            except (aiohttp.ClientError, TimeoutError, CouchError) as exc:
                log.warning(
                    "giving live feed leases back failed (they lapse): %s", type(exc).__name__
                )

    def held_here(self, uid: str) -> tuple[int, int]:
        """How many leases this replica holds for ``uid``, and how many of them open feeds use
        (or are being claimed for one)."""
        pool = self._pools.get(uid)
        return (0, 0) if pool is None else (len(pool.keys), pool.busy)


FEED_LEASES = web.AppKey("feed_leases", FeedLeases)
