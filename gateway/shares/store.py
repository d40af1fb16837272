"""Sealed share records, kept in the gateway's admin-only records database.

Why there and not in a per-user upstream database: a link is looked up by its id alone (the
person opening it has no account, so the owner is unknown), and the records database is already
provisioned admin-only, shared by every replica and checked by the readiness probe. Two records
per share, both keyed for a single ``GET`` or one prefix scan:

- ``share:<id>``            uid, app, e2e (the sealed copy), size, created, expires, burn
- ``shareof:<uid>:<id>``    the same without e2e: what listing, counting and deletion read

The owner's record is written first and deleted last, so a share never exists without the
record that deleting the account or the app finds it by. Before both, the link takes its place
under the account's ``shares_per_user`` (``claims:<uid>:shares``, gateway/auth/records/claims.py,
the pattern every per-user limit follows); the place frees itself when the link expires and is
given back when it is revoked, burnt or deleted with its app or account.

The server holds the sealed copy only: the key is in the link's fragment, which browsers never
send.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiocouch import ConflictError, Database, NotFoundError
from aiocouch.document import Document

from gateway.auth.records.base import Records, iso
from gateway.auth.records.claims import Claims
from gateway.errors import Forbidden

_RETRIES = 5
KIND = "shares"


def new_share_id() -> str:
    """128 random bits: links are not guessable, so an unknown id reveals nothing. Never
    beginning with "-" (base64url has it), which command lines take for an option
    (``couchgate-sync unshare ID``); older ids that do stay valid (see ``sharing.id_operand``)."""
    while (share_id := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return share_id


@dataclass(frozen=True, slots=True)
class Share:
    id: str
    uid: str
    app: str
    size: int
    created: float
    expires: float
    burn: bool
    device: str = ""
    """The device that made the link (the link belongs to the account: revoking the device
    leaves it live; records from before this field have none)."""

    def expired(self, now: float | None = None) -> bool:
        return self.expires <= (time.time() if now is None else now)

    def public(self) -> dict[str, object]:
        """What the owner sees in a list: never the sealed copy."""
        return {
            "id": self.id,
            "app": self.app,
            "size": self.size,
            "created": iso(self.created),
            "expires": iso(self.expires),
            "burn_after_reading": self.burn,
            "device": self.device,
        }

    def fields(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "share": self.id,
            "app": self.app,
            "size": self.size,
            "created": self.created,
            "expires": self.expires,
            "burn": self.burn,
            "device": self.device,
        }


def _share(data: dict[str, Any]) -> Share:
    return Share(
        str(data["share"]),
        str(data["uid"]),
        str(data["app"]),
        int(data["size"]),
        float(data["created"]),
        float(data["expires"]),
        bool(data["burn"]),
        str(data.get("device", "")),
    )


class ShareStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._claims = Claims(Records(db))

    async def _get(self, doc_id: str) -> Document | None:
        try:
            return await self._db.get(doc_id)
        except NotFoundError:
            return None

    async def _delete_record(self, doc_id: str) -> bool:
        for _ in range(_RETRIES):
            doc = await self._get(doc_id)
            if doc is None:
                return False
            try:
                await doc.delete(discard_changes=True)
                return True
            except (ConflictError, NotFoundError):
                continue
        raise RuntimeError(f"could not delete a share record after {_RETRIES} conflicts")

    async def create(
        self,
        uid: str,
        app: str,
        envelope: str,
        expires: float,
        burn: bool,
        device: str = "",
        most: int = 0,
    ) -> Share:
        """A new link; 403 when the account has ``most`` live ones already (0: no limit)."""
        share = Share(new_share_id(), uid, app, len(envelope), time.time(), expires, burn, device)
        refusal = Forbidden(f"you have {most} share links already; revoke one first")
        await self._claims.claim(
            uid, KIND, share.id, most, refusal, until=expires, existing=lambda: self._existing(uid)
        )
        try:
            await self._write(share, envelope)
        except BaseException:
            await asyncio.shield(self.delete(uid, share.id))
            raise
        return share

    async def _existing(self, uid: str) -> dict[str, float]:
        return {share.id: share.expires for share in await self.owned(uid)}

    async def _write(self, share: Share, envelope: str) -> None:
        uid = share.uid
        await Document(
            self._db, f"shareof:{uid}:{share.id}", data={"type": "shareof", **share.fields()}
        ).save()
        await Document(
            self._db,
            f"share:{share.id}",
            data={"type": "share", **share.fields(), "e2e": envelope},
        ).save()

    async def owned(self, uid: str) -> list[Share]:
        return [_share(doc.json) async for doc in self._db.docs(prefix=f"shareof:{uid}:")]

    async def count(self, uid: str) -> int:
        return len(await self.owned(uid))

    async def counts(self) -> dict[str, int]:
        """Shares per user, for the dashboard (only the owners' records are read)."""
        counts: dict[str, int] = {}
        async for doc in self._db.docs(prefix="shareof:"):
            uid = str(doc["uid"])
            counts[uid] = counts.get(uid, 0) + 1
        return counts

    async def owned_share(self, uid: str, share_id: str) -> Share | None:
        doc = await self._get(f"shareof:{uid}:{share_id}")
        return None if doc is None else _share(doc.json)

    async def reseal(self, uid: str, share_id: str, envelope: str) -> Share | None:
        """Replace the sealed copy of one's own live share; None if there is none."""
        for _ in range(_RETRIES):
            doc = await self._get(f"share:{share_id}")
            if doc is None or doc["uid"] != uid:
                return None
            doc["e2e"] = envelope
            doc["size"] = len(envelope)
            try:
                await doc.save()
            except ConflictError:
                continue
            share = _share(doc.json)
            owner = await self._get(f"shareof:{uid}:{share_id}")
            if owner is not None:
                owner["size"] = share.size
                with contextlib.suppress(ConflictError):  # a concurrent re-seal wrote its size
                    await owner.save()
            return share
        return None

    async def fetch(self, share_id: str, *, consume: bool = True) -> tuple[Share, str] | None:
        """The share and its sealed copy, if live. A burn-after-reading share is deleted first,
        and only the fetch whose deletion won the revision gets the copy: one reader, ever.
        ``consume=False`` (a HEAD, which returns no copy: link checkers and previews send one)
        only looks."""
        doc = await self._get(f"share:{share_id}")
        if doc is None:
            return None
        share = _share(doc.json)
        envelope = str(doc["e2e"])
        if share.expired():
            await self.delete(share.uid, share.id)
            return None
        if share.burn and consume:
            try:
                await doc.delete(discard_changes=True)
            except (ConflictError, NotFoundError):
                return None
            await self._delete_record(f"shareof:{share.uid}:{share.id}")
            await self._claims.release(share.uid, KIND, [share.id])
        return share, envelope

    async def delete(self, uid: str, share_id: str) -> bool:
        """Revoke a share at once; False if the owner has none by that id."""
        doc = await self._get(f"share:{share_id}")
        if doc is not None and doc["uid"] != uid:
            return False
        removed = await self._delete_record(f"share:{share_id}") if doc is not None else False
        removed = await self._delete_record(f"shareof:{uid}:{share_id}") or removed
        await self._claims.release(uid, KIND, [share_id])  # last: a place is never freed early
        return removed

    async def delete_where(self, uid: str, apps: Iterable[str] | None = None) -> int:
        """Delete a user's shares (of the given apps, or all); returns how many."""
        wanted = None if apps is None else set(apps)
        deleted = 0
        for share in await self.owned(uid):
            if (wanted is None or share.app in wanted) and await self.delete(uid, share.id):
                deleted += 1
        return deleted

    async def sweep_expired(self) -> int:
        now = time.time()
        swept = 0
        async for doc in self._db.docs(prefix="shareof:"):
            share = _share(doc.json)
            if share.expired(now) and await self.delete(share.uid, share.id):
                swept += 1
        return swept
