"""Places under a per-user limit: ``claims:<uid>:<kind>`` (held: key -> [claimed, until]).

Every per-user limit holds across replicas the same way (docs/deploy.md, "Per-user limits hold
across replicas"): what it counts is listed in one record of the account, and a new entry is checked
against the limit and added in one revision of that record (:meth:`Records.update`). Of two
replicas adding at once, one conflicts, reads what the other wrote and checks again, so no number
of replicas and parallel requests gets past the limit, and nothing is refused while a place is
free. Apps are listed in the account record itself (``user:<uid>``, ``apps``); devices, share
links and live feeds here, one record per kind, so a feed's lease renewal never contends with a
sign-in.

``until`` is 0 for a place held until it is released (a device), else the time at which the place
frees itself: a share link's expiry, a live feed's lease (renewed while the feed lives, so the
feeds of a replica that dies free their places within one lease). ``claimed`` is when the place
was taken: a place whose thing is gone without being released (a replica that died between the
two steps) is given back when the limit is reached and the caller says what it still has
(``existing``), once it is older than :data:`SETTLE_S` (younger ones may belong to a creation
still under way). An account's first claim of a kind lists what it already has (records from
before this record existed).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import Any

from aiocouch.document import Document

from gateway.auth.records.base import KeyedLocks, Records
from gateway.errors import CouchError

PREFIX = "claims:"
SETTLE_S = 60.0
"""How long a place may be held for a thing its creator has not yet written."""

Existing = Callable[[], Awaitable[Mapping[str, float]]]
"""What the account has of a kind now, by key, with when each frees itself (0: never)."""


def _held(doc: Document, now: float) -> dict[str, list[float]]:
    """The places the record holds that have not freed themselves by ``now``."""
    held: dict[str, list[float]] = doc.get("held", {})
    return {key: place for key, place in held.items() if not place[1] or place[1] > now}


class Claims:
    def __init__(self, records: Records) -> None:
        self._records = records
        self._updates = KeyedLocks()

    async def claim(
        self,
        uid: str,
        kind: str,
        key: str,
        most: int,
        refusal: CouchError,
        *,
        until: float = 0.0,
        existing: Existing | None = None,
    ) -> None:
        """Take a place for ``key`` (until released, or until ``until``), or raise
        ``refusal`` when ``most`` are held (0: no limit; the place is recorded all the same,
        so a limit set later counts it)."""

        def take(present: Collection[str] | None) -> Callable[[Document], bool]:
            def change(doc: Document) -> bool:
                now = time.time()
                held = _held(doc, now)
                if present is not None:
                    held = {
                        k: place
                        for k, place in held.items()
                        if k in present or place[0] > now - SETTLE_S
                    }
                if most and key not in held and len(held) >= most:
                    raise refusal
                held[key] = [now, until]
                doc["type"], doc["held"] = "claims", held
                return True

            return change

        async def initial() -> dict[str, Any]:
            have = {} if existing is None else await existing()
            return {"type": "claims", "held": {k: [0.0, t] for k, t in have.items()}}

        doc_id = f"{PREFIX}{uid}:{kind}"
        try:
            await self._records.update(doc_id, take(None), self._updates, initial)
        except CouchError as refused:
            if refused is not refusal or existing is None:
                raise
            # At the limit: give back the places whose things are gone, and look again.
            present = set(await existing())
            await self._records.update(doc_id, take(present), self._updates, initial)

    async def release(self, uid: str, kind: str, keys: Iterable[str]) -> None:
        """Give back the places of ``keys`` (those not held are ignored)."""
        await self.renew(uid, kind, (), 0.0, release=keys)

    async def renew(
        self, uid: str, kind: str, keys: Iterable[str], until: float, release: Iterable[str] = ()
    ) -> None:
        """Move the places of ``keys`` on to free themselves at ``until``, and give back those
        of ``release``: one save for all of an account's leases on this replica."""
        keys, gone = set(keys), set(release)
        if not keys and not gone:
            return

        def change(doc: Document) -> bool:
            held = _held(doc, time.time())
            kept = {k: place for k, place in held.items() if k not in gone}
            for k in keys & kept.keys():
                kept[k] = [kept[k][0], until]
            if kept == doc.get("held"):
                return False
            doc["held"] = kept
            return True

        await self._records.update(f"{PREFIX}{uid}:{kind}", change, self._updates)

    async def held(self, uid: str, kind: str) -> dict[str, float]:
        """The places held now, by key, with when each frees itself (0: never)."""
        doc = await self._records.get(f"{PREFIX}{uid}:{kind}")
        if doc is None:
            return {}
        return {k: place[1] for k, place in _held(doc, time.time()).items()}

    async def forget_user(self, uid: str) -> None:
        """The account is gone: so are its places."""
        async for doc in self._records.with_prefix(f"{PREFIX}{uid}:"):
            await self._records.delete(doc)
