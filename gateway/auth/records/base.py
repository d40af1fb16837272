"""What every kind of identity record shares: one admin-only upstream database, read and written
one document at a time, and the locks that keep this process's updates of one record in line.

Counters and single use rely on CouchDB's revision check: of two replicas that update the same
record at once, one gets a conflict and retries or gives up, so limits hold across replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiocouch import ConflictError, Database, NotFoundError
from aiocouch.document import Document

from gateway.errors import UpstreamUnavailable

RETRIES = 5
UPDATE_RETRIES = 50
"""Attempts at saving a contended record (the account, an app's ``_local`` tally) before the
request is told the record is busy."""


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def back_off(attempt: int) -> None:
    """A growing random pause after a conflict with another replica's update."""
    await asyncio.sleep(random.uniform(0, 0.01 * (attempt + 1)))


class KeyedLocks:
    """One lock per key, held only while someone holds or waits for it, so the table stays as
    small as the number of keys in use this moment."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class Records:
    """The records database, one document at a time."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, doc_id: str) -> Document | None:
        try:
            return await self.db.get(doc_id)
        except NotFoundError:
            return None

    def new(self, doc_id: str, data: dict[str, Any]) -> Document:
        """A record not yet saved."""
        return Document(self.db, doc_id, data=data)

    async def put_new(self, doc_id: str, data: dict[str, Any]) -> bool:
        """Create a record; False if one with that id exists already (never overwrites)."""
        try:
            await self.new(doc_id, data).save()
        except ConflictError:
            return False
        return True

    def with_prefix(self, prefix: str) -> AsyncIterator[Document]:
        return self.db.docs(prefix=prefix)

    async def update(
        self,
        doc_id: str,
        change: Callable[[Document], bool],
        locks: KeyedLocks,
        initial: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    ) -> bool:
        """Apply ``change`` to a record until it is saved: how every per-user limit holds.

        ``change`` sees the record as it is now and returns whether there is anything to save
        (it may raise to refuse: a limit reached). Saved with the revision it read, so when
        another replica changed the record meanwhile the save conflicts and ``change`` runs
        again on what that replica wrote: a check and the change it allows are one revision,
        whatever the number of replicas. Updates of one record are serialized in this process
        (``locks``), so conflicts come only from other replicas; those are retried with a
        growing random pause, and a record that stays contended is an error rather than an
        update silently lost. A record that does not exist is made from ``initial()``, or,
        without it, nothing is done and the answer is False.
        """
        async with locks.hold(doc_id):
            for attempt in range(UPDATE_RETRIES):
                doc = await self.get(doc_id)
                if doc is None:
                    if initial is None:
                        return False
                    doc = self.new(doc_id, await initial())
                if not change(doc):
                    return True
                try:
                    await doc.save()
                    return True
                except ConflictError:
                    await back_off(attempt)
        raise UpstreamUnavailable("the account record is busy; try again")

    async def delete(self, doc: Document) -> bool:
        """Delete this revision; False if it is gone or was changed meanwhile (single use)."""
        try:
            await doc.delete(discard_changes=True)
        except (ConflictError, NotFoundError):
            return False
        return True

    async def delete_record(self, doc_id: str) -> bool:
        """Delete a record whatever happens to it meanwhile (a device's last-seen update must
        not save it from revocation); False if there was none."""
        for _ in range(RETRIES):
            doc = await self.get(doc_id)
            if doc is None:
                return False
            if await self.delete(doc):
                return True
        raise RuntimeError(f"could not delete a record after {RETRIES} conflicts")

    async def sweep_expired(self, prefixes: tuple[str, ...]) -> int:
        """Delete the records under ``prefixes`` whose ``expires`` has passed; returns how many."""
        swept = 0
        now = time.time()
        for prefix in prefixes:
            async for doc in self.db.docs(prefix=prefix):
                if float(doc["expires"]) < now and await self.delete(doc):
                    swept += 1
        return swept
