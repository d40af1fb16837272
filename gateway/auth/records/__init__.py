"""The identity records: accounts, their apps' ``_local`` tallies, devices, sign-in challenges
and single-use codes, one module per kind of record.

They live in one admin-only upstream database, so every gateway replica sees the same state and
the process keeps none. Document ids are the lookup keys, so every check is one ``GET``:

- ``user:<uid>``, ``email:<hmac>``          :mod:`.users`
- ``locals:<uid>:<app>``                     :mod:`.local_docs`
- ``device:<uid>:<device>``                  :mod:`.devices`
- ``claims:<uid>:<kind>``                    :mod:`.claims` (places under per-user limits)
- ``challenge:<id>``                         :mod:`.challenges`
- ``enroll:<sha256(code)>``, ``link:<sha256(code)>``   :mod:`.grants`

:class:`IdentityStore` is what the application holds (``keys.IDENTITIES``): one store per kind,
as attributes, and the few steps about an account as a whole, which span kinds (its apps and
their tallies, its removal, the sweep of expired codes) or which every part of the gateway asks
(who the account is).
"""

from __future__ import annotations

from collections.abc import Callable

from aiocouch import Database

from gateway.auth.records.base import KeyedLocks, Records
from gateway.auth.records.challenges import PREFIX as CHALLENGE_PREFIX
from gateway.auth.records.challenges import Challenges
from gateway.auth.records.claims import Claims
from gateway.auth.records.devices import Devices
from gateway.auth.records.grants import PREFIXES as GRANT_PREFIXES
from gateway.auth.records.grants import Grants
from gateway.auth.records.local_docs import LocalDocs
from gateway.auth.records.users import User, Users


class IdentityStore:
    def __init__(self, db: Database) -> None:
        self._records = Records(db)
        self.users = Users(self._records)
        self.locals = LocalDocs(self._records)
        self.claims = Claims(self._records)
        self.devices = Devices(self._records, self.claims)
        self.challenges = Challenges(self._records)
        self.grants = Grants(self._records)
        self.app_changes = KeyedLocks()
        """Held by the proxy while it creates or deletes one app's database (``uid/app``)."""

    async def user(self, uid: str) -> User | None:
        return await self.users.get(uid)

    async def uid_named(self, who: str, email_hmac: Callable[[str], str]) -> str | None:
        """The uid of a user an admin names by uid or by email address."""
        return await self.users.uid_named(who, email_hmac)

    async def add_app(self, uid: str, app: str, most: int = 0) -> bool | None:
        """Record an app of the account (see :meth:`Users.add_app`)."""
        return await self.users.add_app(uid, app, most)

    async def remove_app(self, uid: str, app: str) -> None:
        """The app's database is gone: off the account's list, and its ``_local`` tally too."""
        await self.users.remove_app(uid, app)
        await self.locals.forget_app(uid, app)

    async def local_docs(self, uid: str, app: str) -> dict[str, int]:
        """The app's ``_local`` documents as the tally knows them (hashed id -> size step)."""
        return await self.locals.of(uid, app)

    async def remove_user(self, uid: str) -> User | None:
        """Forget an account and its devices; the caller deletes its databases (``apps``)."""
        user = await self.users.get(uid)
        if user is None:
            return None
        for device in await self.devices.of(uid):
            await self.devices.revoke(uid, device.device)
        await self.locals.forget_user(uid)
        await self.claims.forget_user(uid)
        await self.users.remove(user)
        return user

    async def sweep_expired(self) -> int:
        """Delete challenges and codes past their expiry that nobody redeemed; returns how many.

        Every replica may sweep: two deleting the same record just make one conflict.
        """
        return await self._records.sweep_expired((CHALLENGE_PREFIX, *GRANT_PREFIXES))
