"""The tally of an app's ``_local`` documents: ``locals:<uid>:<app>`` (docs: hashed id -> size).

The upstream counts ``_local`` documents neither in doc_count nor in its sizes, and
pouchdb-server cannot list them, so the gateway keeps the tally: which ids exist and how large
each is, rounded up to LOCAL_SIZE_STEP so that a checkpoint's usual small updates write nothing
here. Ids are hashed: they are the user's data.
"""

from __future__ import annotations

import hashlib

from aiocouch import ConflictError

from gateway.auth.records.base import UPDATE_RETRIES, KeyedLocks, Records, back_off
from gateway.errors import Forbidden, UpstreamUnavailable

LOCAL_SIZE_STEP = 4096
CACHED_TALLIES_MAX = 10_000


def local_key(doc_id: str) -> str:
    """How the tally of an app's ``_local`` documents names one (not its id: ids are data)."""
    return hashlib.sha256(doc_id.encode()).hexdigest()[:32]


def _size_step(size: int) -> int:
    """``size`` rounded up to a whole LOCAL_SIZE_STEP (at least one)."""
    return max(1, -(-size // LOCAL_SIZE_STEP)) * LOCAL_SIZE_STEP


class LocalDocs:
    def __init__(self, records: Records) -> None:
        self._records = records
        self._updates = KeyedLocks()
        self._known: dict[str, dict[str, int]] = {}  # "uid:app" -> _local id -> size step

    async def of(self, uid: str, app: str) -> dict[str, int]:
        """The app's ``_local`` ids (hashed: they are the user's) and their sizes as last
        recorded (cached per replica)."""
        key = f"{uid}:{app}"
        known = self._known.get(key)
        if known is None:
            doc = await self._records.get(f"locals:{key}")
            known = {} if doc is None else dict(doc.json.get("docs", {}))
            self._remember(key, known)
        return known

    def _remember(self, key: str, docs: dict[str, int]) -> None:
        if len(self._known) >= CACHED_TALLIES_MAX:
            self._known.clear()
        self._known[key] = docs

    async def admit(self, uid: str, app: str, sizes: dict[str, int], most: int) -> None:
        """Record ``_local`` writes about to be forwarded; 403 past ``most`` documents.

        Nothing is written when every id is known and stays in its size step, which is what a
        replication's checkpoint updates are.
        """
        key = f"{uid}:{app}"
        wanted = {local_key(doc_id): _size_step(size) for doc_id, size in sizes.items()}
        known = await self.of(uid, app)
        if all(known.get(doc_id) == size for doc_id, size in wanted.items()):
            return
        async with self._updates.hold(key):
            for attempt in range(UPDATE_RETRIES):
                doc = await self._records.get(f"locals:{key}")
                if doc is None:
                    doc = self._records.new(f"locals:{key}", {"type": "locals", "docs": {}})
                docs = dict(doc["docs"]) if "docs" in doc else {}
                docs.update(wanted)
                if most and len(docs) > most:
                    self._remember(key, dict(doc["docs"]) if "docs" in doc else {})
                    raise Forbidden(f"_local document limit reached: {most} per app")
                doc["type"], doc["docs"] = "locals", docs
                try:
                    await doc.save()
                except ConflictError:
                    await back_off(attempt)
                    continue
                self._remember(key, docs)
                return
        raise UpstreamUnavailable("the account record is busy; try again")

    async def forget(self, uid: str, app: str, doc_id: str) -> None:
        """A ``_local`` document was deleted: it no longer counts."""
        key = f"{uid}:{app}"
        doc_id = local_key(doc_id)
        if doc_id not in await self.of(uid, app):
            return
        async with self._updates.hold(key):
            for _ in range(UPDATE_RETRIES):
                doc = await self._records.get(f"locals:{key}")
                if doc is None:
                    break
                doc["docs"] = {k: v for k, v in doc["docs"].items() if k != doc_id}
                try:
                    await doc.save()
                except ConflictError:
                    continue
                self._remember(key, dict(doc["docs"]))
                return
        self._known.pop(key, None)

    async def forget_app(self, uid: str, app: str) -> None:
        """The app's database is gone, and its ``_local`` documents with it."""
        self._known.pop(f"{uid}:{app}", None)
        await self._records.delete_record(f"locals:{uid}:{app}")
        self._known.pop(f"{uid}:{app}", None)

    async def forget_user(self, uid: str) -> None:
        """The account is gone: every tally of its apps goes too."""
        async for tally in self._records.with_prefix(f"locals:{uid}:"):
            await self._records.delete(tally)
