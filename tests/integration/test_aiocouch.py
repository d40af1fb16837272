"""A second real client beside PouchDB and RxDB: aiocouch, syncing two devices live through
couchgate on every upstream (issue 22).

Why aiocouch: of the CouchDB clients on PyPI and npm that are maintained and build their own
requests, none but PouchDB and RxDB (both covered) ships a replicator; the rest (aiocouch, nano,
the Cloudant SDKs, pycouchdb, couchdb3) are request libraries with a changes follower at most
(Go's kivik has a one-shot replicator, but no Go toolchain new enough comes with this project's
machines). aiocouch is maintained, asynchronous (it runs beside the embedded store on the test's
own loop), already installed (couchgate talks to its upstream with it), and its request shapes
are not PouchDB's: ``_all_docs`` POSTed with ``keys`` in the body and ``include_docs`` in the
query (issue 22's client put both in the body), a continuous ``_changes`` with
``heartbeat=true``, ``PUT`` with ``_rev`` in the body, ``DELETE ?rev=``, ``GET ?conflicts=true``.

Each device here is what an app written on aiocouch does to sync: it keeps a replica of the
app's documents (the winners, with their ``_conflicts``), follows a continuous ``_changes``
(``include_docs``, ``conflicts``, ``style=all_docs``) from its own checkpoint, and writes
through aiocouch's documents and bulk operations while online. An edit made offline is pushed
on reconnect as CouchDB's replication pushes one (``_bulk_docs`` with ``new_edits=false`` and
the edit's ``_revisions``), so two devices' concurrent edits become a conflict that the server
settles the same for both, rather than a 409 that drops one. Only couchgate is between the
devices; the apps are plaintext (the client does not seal), as the harness's gateways allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiocouch import ConflictError, CouchDB, Database

from tests.harness import Device, GatewayHarness

APP = "notes"
WAIT_S = 30.0
"""How long a device may take to see a change before the test fails (not a timing assertion:
on loopback a change arrives in milliseconds; this only keeps a broken feed from hanging)."""


def _bearer(token: str) -> aiohttp.ClientMiddlewareType:
    """couchgate's device token on every request aiocouch makes (aiocouch knows Basic and
    cookies only), and JSON asked for: pouchdb-server answers ``text/plain`` to aiohttp's
    ``Accept: */*`` (CouchDB and the embedded store answer JSON), couchgate passes its upstream's
    type on, and aiocouch refuses to decode anything but JSON."""

    async def add(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        request.headers["Authorization"] = f"Bearer {token}"
        request.headers["Accept"] = "application/json"
        return await handler(request)

    return add


class AioDevice:
    """One device of an app built on aiocouch: a replica, a live pull, online and offline writes."""

    def __init__(self, device: Device) -> None:
        self.couch = CouchDB(f"{device.base_url}/db", middlewares=(_bearer(device.token),))
        self.held: dict[str, dict[str, Any]] = {}
        self.since: str | int = 0
        self.pending: list[dict[str, Any]] = []
        """Edits made offline, each with the revision it was made on."""
        self._db: Database | None = None
        self._feed: asyncio.Task[None] | None = None
        self._seen = asyncio.Condition()

    @property
    def db(self) -> Database:
        assert self._db is not None, "open() first"
        return self._db

    async def open(self) -> None:
        self._db = await self.couch.create(APP, exists_ok=True)
        self.online()

    async def close(self) -> None:
        await self.offline()
        await self.couch.close()

    def online(self) -> None:
        self._feed = asyncio.create_task(self._follow())

    async def offline(self) -> None:
        if self._feed is not None:
            self._feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed
            self._feed = None

    async def _follow(self) -> None:
        """The live pull: each change's winner (or its deletion) into the replica."""
        async for event in self.db.changes(
            feed="continuous",
            since=self.since,
            include_docs=True,
            conflicts=True,
            style="all_docs",
        ):
            row = event.json
            if "id" not in row:
                continue  # the feed's closing line
            async with self._seen:
                if row.get("deleted"):
                    self.held.pop(row["id"], None)
                else:
                    self.held[row["id"]] = row["doc"]
                self.since = row["seq"]
                self._seen.notify_all()

    async def sees(self, predicate: Callable[[dict[str, dict[str, Any]]], bool]) -> None:
        """Wait until the replica satisfies ``predicate``; a feed that fails or ends meanwhile
        fails the wait with its own error."""
        assert self._feed is not None, "the device is offline"

        async def until() -> None:
            async with self._seen:
                await self._seen.wait_for(lambda: predicate(self.held))

        waiting = asyncio.create_task(until())
        try:
            async with asyncio.timeout(WAIT_S):
                await asyncio.wait({waiting, self._feed}, return_when=asyncio.FIRST_COMPLETED)
            if waiting.done():
                waiting.result()
                return
            self._feed.result()  # the feed's own error
            raise AssertionError("the changes feed ended")
        finally:
            waiting.cancel()

    async def put(self, doc_id: str, **fields: Any) -> None:
        """An online edit through aiocouch's document: read it (or start it), change, ``PUT``."""
        doc = await self.db.get(doc_id, default={})
        for key, value in fields.items():
            doc[key] = value
        await doc.save()

    async def delete(self, doc_id: str) -> None:
        doc = await self.db.get(doc_id)
        await doc.delete()

    async def bulk(self, changes: dict[str, dict[str, Any]]) -> None:
        """Several edits in one ``_bulk_docs``, as aiocouch makes them: it reads the documents'
        current state with ``POST _all_docs`` (``keys`` in the body) first."""
        async with self.db.update_docs(list(changes), create=True) as bulk:
            async for doc in bulk:
                for key, value in changes[doc.id].items():
                    doc[key] = value
        assert bulk.error == [], bulk.response

    def edit_offline(self, doc_id: str, **fields: Any) -> str:
        """An edit while offline: a new revision on the one held, as a local database makes it
        (position + 1, a digest of the edit); returns the new revision."""
        base = self.held[doc_id]
        pos, parent = base["_rev"].split("-", 1)
        body = {k: v for k, v in base.items() if not k.startswith("_")} | fields
        digest = hashlib.md5(
            json.dumps([parent, body], sort_keys=True).encode(), usedforsecurity=False
        ).hexdigest()
        rev = f"{int(pos) + 1}-{digest}"
        edit = {"_id": doc_id, "_rev": rev, **body}
        edit["_revisions"] = {"start": int(pos) + 1, "ids": [digest, parent]}
        self.pending.append(edit)
        self.held[doc_id] = {"_id": doc_id, "_rev": rev, **body}
        return rev

    async def reconnect(self) -> None:
        """Push what was edited offline (with its history, so nothing is overwritten), then
        pull live again from the checkpoint. The push is aiocouch's own ``_bulk_docs`` request,
        the one its bulk operations send: its public API has no ``new_edits``."""
        if self.pending:
            failures: Any = await self.db._bulk_docs(self.pending, new_edits=False)
            assert failures == [], failures  # new_edits=false answers only the failures
            self.pending = []
        self.online()


@contextlib.asynccontextmanager
async def two_devices(gateway: GatewayHarness) -> AsyncIterator[tuple[AioDevice, AioDevice]]:
    """A phone and a laptop of one person, both syncing the app live."""
    phone = await gateway.new_device(name="phone")
    laptop = await gateway.new_device(same_user_as=phone, name="laptop")
    a, b = AioDevice(phone), AioDevice(laptop)
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


def body(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if doc is None else {k: v for k, v in doc.items() if not k.startswith("_")}


async def test_two_aiocouch_devices_sync_edits_and_deletions_live_both_ways(
    gateway: GatewayHarness,
) -> None:
    async with two_devices(gateway) as (a, b):
        await a.put("n1", text="first")
        await b.sees(lambda held: body(held.get("n1")) == {"text": "first"})
        await b.put("n1", text="edited on b")
        await a.sees(lambda held: body(held.get("n1")) == {"text": "edited on b"})

        # Bulk writes read the documents' current state with POST _all_docs first: new ones,
        # then edits of them (which need their revisions from that read).
        await a.bulk({"n2": {"text": "two"}, "n3": {"text": "three"}})
        await b.sees(lambda held: body(held.get("n3")) == {"text": "three"})
        await b.bulk({"n2": {"text": "two, again"}, "n3": {"done": True}})
        await a.sees(lambda held: body(held.get("n3")) == {"text": "three", "done": True})

        await b.delete("n1")
        await a.sees(lambda held: "n1" not in held)
        await b.sees(lambda held: "n1" not in held)

        assert a.held == b.held
        assert {doc_id: body(doc) for doc_id, doc in a.held.items()} == {
            "n2": {"text": "two, again"},
            "n3": {"text": "three", "done": True},
        }
        # What aiocouch reads back is what the devices hold.
        stored = {doc.id: doc.data async for doc in a.db.docs()}
        assert stored == a.held


async def test_concurrent_offline_edits_become_one_conflict_both_devices_settle_alike(
    gateway: GatewayHarness,
) -> None:
    async with two_devices(gateway) as (a, b):
        await a.put("shared", text="base", n=0)
        await b.sees(lambda held: body(held.get("shared")) == {"text": "base", "n": 0})
        base = b.held["shared"]["_rev"]

        await a.offline()
        await b.offline()
        rev_a = a.edit_offline("shared", text="from a", n=1)
        rev_b = b.edit_offline("shared", text="from b", n=2)
        await a.reconnect()
        await b.reconnect()

        # CouchDB's rule, the same on every replica: of two leaves at one position, the
        # greater revision id wins; the other is listed in _conflicts.
        winner, loser = sorted([rev_a, rev_b], reverse=True)

        def settled(held: dict[str, dict[str, Any]]) -> bool:
            doc = held.get("shared", {})
            return doc.get("_rev") == winner and doc.get("_conflicts") == [loser]

        await a.sees(settled)
        await b.sees(settled)
        assert a.held == b.held
        expected = {"text": "from a", "n": 1} if winner == rev_a else {"text": "from b", "n": 2}
        assert body(a.held["shared"]) == expected
        assert await (await a.db.get("shared")).conflicts() == [loser]
        assert await (await b.db.get("shared")).conflicts() == [loser]

        # An online edit on the revision both started from is aiocouch's ConflictError (a 409),
        # not a third branch.
        stale = await a.db.get("shared", rev=base)
        stale["text"] = "a third edit"
        with pytest.raises(ConflictError):
            await stale.save()

        # b settles the conflict by deleting the losing revision; both see it settled.
        losing = await b.db.get("shared", rev=loser)
        await losing.delete()

        def resolved(held: dict[str, dict[str, Any]]) -> bool:
            doc = held.get("shared", {})
            return doc.get("_rev") == winner and "_conflicts" not in doc

        await a.sees(resolved)
        await b.sees(resolved)
        assert a.held == b.held
        assert body(a.held["shared"]) == expected
        assert await (await b.db.get("shared")).conflicts() == []
