"""Accounts: ``user:<uid>`` (created, apps, email_hmac) and ``email:<hmac>`` (uid).

The address itself is never stored; an account is found by its address's HMAC. The apps list is
the account's say over which databases it has, and the apps-per-user limit is checked and saved
in one revision of the record, so parallel creations through any number of replicas cannot pass
it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiocouch.document import Document

from gateway.auth import tokens
from gateway.auth.records.base import RETRIES, KeyedLocks, Records
from gateway.errors import Forbidden


@dataclass(frozen=True, slots=True)
class User:
    uid: str
    created: float
    apps: tuple[str, ...]
    email_hmac: str | None


def _user(data: dict[str, Any]) -> User:
    return User(data["uid"], data["created"], tuple(data.get("apps", ())), data.get("email_hmac"))


class Users:
    def __init__(self, records: Records) -> None:
        self._records = records
        self._updates = KeyedLocks()

    async def for_email(self, email_hmac: str) -> str | None:
        doc = await self._records.get(f"email:{email_hmac}")
        return None if doc is None else str(doc["uid"])

    async def uid_named(self, who: str, email_hmac: Callable[[str], str]) -> str | None:
        """The uid of a user an admin names by uid or by email address (looked up by its
        ``email_hmac``: the records hold no address); None for an unknown address."""
        return await self.for_email(email_hmac(who)) if "@" in who else who

    async def get(self, uid: str) -> User | None:
        doc = await self._records.get(f"user:{uid}")
        return None if doc is None else _user(doc.json)

    async def create(self, email_hmac: str | None) -> tuple[str, bool]:
        """The account for an address, made if need be; returns ``(uid, created)``.

        The ``email:`` record is written first: of two replicas creating the same account at
        once, one loses the conflict and takes the winner's uid, so an address never gets two.
        """
        for _ in range(RETRIES):
            if email_hmac is not None:
                existing = await self.for_email(email_hmac)
                if existing is not None:
                    return existing, False
            uid = tokens.new_uid()
            if email_hmac is not None and not await self._records.put_new(
                f"email:{email_hmac}", {"type": "email", "uid": uid}
            ):
                continue
            data = {
                "type": "user",
                "uid": uid,
                "created": time.time(),
                "apps": [],
                "email_hmac": email_hmac,
            }
            await self._records.put_new(f"user:{uid}", data)
            return uid, True
        raise RuntimeError("could not create the account")  # pragma: no cover - needs 5 races

    async def all(self) -> list[User]:
        return [_user(doc.json) async for doc in self._records.with_prefix("user:")]

    async def _update(self, uid: str, change: Callable[[Document], bool]) -> bool:
        """Apply ``change`` to the user record until it is saved; False if there is no account
        (:meth:`Records.update`)."""
        return await self._records.update(f"user:{uid}", change, self._updates)

    async def add_app(self, uid: str, app: str, most: int = 0) -> bool | None:
        """Record an app of the account; None if there is no account, else whether it is new.

        With ``most``, refuses (403) an app past that many: checked and saved in one revision
        of the record, so parallel creations through any number of replicas cannot pass it.
        """
        added = False

        def add(doc: Document) -> bool:
            nonlocal added
            if app in doc["apps"]:
                return False
            if most and len(doc["apps"]) >= most:
                raise Forbidden(f"app limit reached: an account may have {most} apps")
            doc["apps"] = sorted([*doc["apps"], app])
            added = True
            return True

        return added if await self._update(uid, add) else None

    async def remove_app(self, uid: str, app: str) -> None:
        """Take an app off the account's list (its ``_local`` tally is the caller's)."""

        def remove(doc: Document) -> bool:
            if app not in doc["apps"]:
                return False
            doc["apps"] = [a for a in doc["apps"] if a != app]
            return True

        await self._update(uid, remove)

    async def remove(self, user: User) -> None:
        """Delete the account's records (its address's, then its own); what hangs off it
        (devices, tallies, databases) is the caller's."""
        if user.email_hmac is not None:
            await self._records.delete_record(f"email:{user.email_hmac}")
        await self._records.delete_record(f"user:{user.uid}")
