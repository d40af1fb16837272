"""The identity records: users, devices, sign-in challenges and single-use codes.

They live in one admin-only upstream database, so every gateway replica sees the same state and
the process keeps none. Document ids are the lookup keys, so every check is one ``GET``:

- ``user:<uid>``                 created, apps, email_hmac
- ``email:<hmac>``               uid (the address itself is never stored)
- ``device:<uid>:<device>``      name, token_hash, created, last_seen
- ``challenge:<id>``             email_hmac, code_hash, attempts, expires, permitted
- ``enroll:<sha256(code)>``, ``link:<sha256(code)>``   uid, expires
- ``locals:<uid>:<app>``         docs: the app's ``_local`` document ids and their sizes

Counters and single use rely on CouchDB's revision check: of two replicas that update the same
record at once, one gets a conflict and retries or gives up, so limits hold across replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aiocouch import ConflictError, Database, NotFoundError
from aiocouch.document import Document

from gateway.auth import tokens
from gateway.errors import Forbidden, UpstreamUnavailable

MAX_ATTEMPTS = 5
CHALLENGE_TTL_S = 600
ENROLL_TTL_S = 7 * 24 * 3600
LINK_TTL_S = 300
LAST_SEEN_GRANULARITY_S = 300
RECENT_DEVICE_S = 2.0
RECENT_DEVICES_MAX = 10_000
_RETRIES = 5
USER_UPDATE_RETRIES = 50
LOCAL_SIZE_STEP = 4096

GrantKind = Literal["enroll", "link"]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Device:
    uid: str
    device: str
    name: str
    created: float
    last_seen: float

    @property
    def key(self) -> str:
        return f"{self.uid}:{self.device}"

    def seen_long_ago(self) -> bool:
        return time.time() - self.last_seen >= LAST_SEEN_GRANULARITY_S

    def public(self) -> dict[str, str]:
        return {
            "id": self.device,
            "name": self.name,
            "created": iso(self.created),
            "last_seen": iso(self.last_seen),
        }


@dataclass(frozen=True, slots=True)
class User:
    uid: str
    created: float
    apps: tuple[str, ...]
    email_hmac: str | None


def local_key(doc_id: str) -> str:
    """How the tally of an app's ``_local`` documents names one (not its id: ids are data)."""
    return hashlib.sha256(doc_id.encode()).hexdigest()[:32]


def _size_step(size: int) -> int:
    """``size`` rounded up to a whole LOCAL_SIZE_STEP (at least one)."""
    return max(1, -(-size // LOCAL_SIZE_STEP)) * LOCAL_SIZE_STEP


def _device(data: dict[str, Any]) -> Device:
    return Device(data["uid"], data["device"], data["name"], data["created"], data["last_seen"])


def _user(data: dict[str, Any]) -> User:
    return User(data["uid"], data["created"], tuple(data.get("apps", ())), data.get("email_hmac"))


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


class IdentityStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        # Redemptions of one challenge run one at a time here: dozens of parallel updates of one
        # record crash pouchdb-server. Across replicas the revision check still decides.
        self._redeeming = KeyedLocks()
        self._user_updates = KeyedLocks()
        self._locals: dict[str, dict[str, int]] = {}  # "uid:app" -> _local id -> size step
        self.app_changes = KeyedLocks()
        """Held by the proxy while it creates or deletes one app's database (``uid/app``)."""
        # token hash -> (when checked, device). A replication sends several requests a second
        # and each would otherwise wait for one more upstream read first. Kept for seconds only,
        # and dropped at once when a revocation is seen: here, or on any replica through the
        # records feed (gateway/auth/revocations.py).
        self._recent: dict[str, tuple[float, Device]] = {}
        self._forgotten: dict[str, float] = {}  # "uid:device" -> when revoked (monotonic)

    async def _get(self, doc_id: str) -> Document | None:
        try:
            return await self._db.get(doc_id)
        except NotFoundError:
            return None

    async def _put_new(self, doc_id: str, data: dict[str, Any]) -> bool:
        """Create a record; False if one with that id exists already (never overwrites)."""
        try:
            await Document(self._db, doc_id, data=data).save()
        except ConflictError:
            return False
        return True

    async def _delete(self, doc: Document) -> bool:
        """Delete this revision; False if it is gone or was changed meanwhile (single use)."""
        try:
            await doc.delete(discard_changes=True)
        except (ConflictError, NotFoundError):
            return False
        return True

    async def _delete_record(self, doc_id: str) -> bool:
        """Delete a record whatever happens to it meanwhile (a device's last-seen update must
        not save it from revocation); False if there was none."""
        for _ in range(_RETRIES):
            doc = await self._get(doc_id)
            if doc is None:
                return False
            if await self._delete(doc):
                return True
        raise RuntimeError(f"could not delete a record after {_RETRIES} conflicts")

    # -- users ---------------------------------------------------------------------------------

    async def user_for_email(self, email_hmac: str) -> str | None:
        doc = await self._get(f"email:{email_hmac}")
        return None if doc is None else str(doc["uid"])

    async def uid_named(self, who: str, email_hmac: Callable[[str], str]) -> str | None:
        """The uid of a user an admin names by uid or by email address (looked up by its
        ``email_hmac``: the records hold no address); None for an unknown address."""
        return await self.user_for_email(email_hmac(who)) if "@" in who else who

    async def user(self, uid: str) -> User | None:
        doc = await self._get(f"user:{uid}")
        return None if doc is None else _user(doc.json)

    async def create_user(self, email_hmac: str | None) -> tuple[str, bool]:
        """The account for an address, made if need be; returns ``(uid, created)``.

        The ``email:`` record is written first: of two replicas creating the same account at
        once, one loses the conflict and takes the winner's uid, so an address never gets two.
        """
        for _ in range(_RETRIES):
            if email_hmac is not None:
                existing = await self.user_for_email(email_hmac)
                if existing is not None:
                    return existing, False
            uid = tokens.new_uid()
            if email_hmac is not None and not await self._put_new(
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
            await self._put_new(f"user:{uid}", data)
            return uid, True
        raise RuntimeError("could not create the account")  # pragma: no cover - needs 5 races

    async def users(self) -> list[User]:
        return [_user(doc.json) async for doc in self._db.docs(prefix="user:")]

    async def _update_user(self, uid: str, change: Callable[[Document], bool]) -> bool:
        """Apply ``change`` to the user record until it is saved; False if there is no account.

        ``change`` returns whether there is anything to save (and may raise to refuse). Updates
        of one account are serialized here, so conflicts come only from other replicas; those
        are retried, with a growing random pause, and a record that stays contended is an
        error rather than an update silently lost.
        """
        async with self._user_updates.hold(uid):
            for attempt in range(USER_UPDATE_RETRIES):
                doc = await self._get(f"user:{uid}")
                if doc is None:
                    return False
                if not change(doc):
                    return True
                try:
                    await doc.save()
                    return True
                except ConflictError:
                    await asyncio.sleep(random.uniform(0, 0.01 * (attempt + 1)))
        raise UpstreamUnavailable("the account record is busy; try again")

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

        return added if await self._update_user(uid, add) else None

    async def remove_app(self, uid: str, app: str) -> None:
        def remove(doc: Document) -> bool:
            if app not in doc["apps"]:
                return False
            doc["apps"] = [a for a in doc["apps"] if a != app]
            return True

        await self._update_user(uid, remove)
        await self.forget_local_docs(uid, app)

    # -- _local documents ----------------------------------------------------------------------
    # The upstream counts them neither in doc_count nor in its sizes, and pouchdb-server cannot
    # list them, so the gateway keeps the tally: which ids exist and how large each is, rounded
    # up to LOCAL_SIZE_STEP so that a checkpoint's usual small updates write nothing here.

    async def local_docs(self, uid: str, app: str) -> dict[str, int]:
        """The app's ``_local`` ids (hashed: they are the user's) and their sizes as last
        recorded (cached per replica)."""
        key = f"{uid}:{app}"
        known = self._locals.get(key)
        if known is None:
            doc = await self._get(f"locals:{key}")
            known = {} if doc is None else dict(doc.json.get("docs", {}))
            self._remember_locals(key, known)
        return known

    def _remember_locals(self, key: str, docs: dict[str, int]) -> None:
        if len(self._locals) >= RECENT_DEVICES_MAX:
            self._locals.clear()
        self._locals[key] = docs

    async def admit_local_docs(self, uid: str, app: str, sizes: dict[str, int], most: int) -> None:
        """Record ``_local`` writes about to be forwarded; 403 past ``most`` documents.

        Nothing is written when every id is known and stays in its size step, which is what a
        replication's checkpoint updates are.
        """
        key = f"{uid}:{app}"
        wanted = {local_key(doc_id): _size_step(size) for doc_id, size in sizes.items()}
        known = await self.local_docs(uid, app)
        if all(known.get(doc_id) == size for doc_id, size in wanted.items()):
            return
        async with self._user_updates.hold(f"locals:{key}"):
            for attempt in range(USER_UPDATE_RETRIES):
                doc = await self._get(f"locals:{key}")
                if doc is None:
                    doc = Document(self._db, f"locals:{key}", data={"type": "locals", "docs": {}})
                docs = dict(doc["docs"]) if "docs" in doc else {}
                docs.update(wanted)
                if most and len(docs) > most:
                    self._remember_locals(key, dict(doc["docs"]) if "docs" in doc else {})
                    raise Forbidden(f"_local document limit reached: {most} per app")
                doc["type"], doc["docs"] = "locals", docs
                try:
                    await doc.save()
                except ConflictError:
                    await asyncio.sleep(random.uniform(0, 0.01 * (attempt + 1)))
                    continue
                self._remember_locals(key, docs)
                return
        raise UpstreamUnavailable("the account record is busy; try again")

    async def forget_local_doc(self, uid: str, app: str, doc_id: str) -> None:
        """A ``_local`` document was deleted: it no longer counts."""
        key = f"{uid}:{app}"
        doc_id = local_key(doc_id)
        if doc_id not in await self.local_docs(uid, app):
            return
        async with self._user_updates.hold(f"locals:{key}"):
            for _ in range(USER_UPDATE_RETRIES):
                doc = await self._get(f"locals:{key}")
                if doc is None:
                    break
                doc["docs"] = {k: v for k, v in doc["docs"].items() if k != doc_id}
                try:
                    await doc.save()
                except ConflictError:
                    continue
                self._remember_locals(key, dict(doc["docs"]))
                return
        self._locals.pop(key, None)

    async def forget_local_docs(self, uid: str, app: str) -> None:
        """The app's database is gone, and its ``_local`` documents with it."""
        self._locals.pop(f"{uid}:{app}", None)
        await self._delete_record(f"locals:{uid}:{app}")
        self._locals.pop(f"{uid}:{app}", None)

    async def remove_user(self, uid: str) -> User | None:
        """Forget an account and its devices; the caller deletes its databases (``apps``)."""
        doc = await self._get(f"user:{uid}")
        if doc is None:
            return None
        user = _user(doc.json)
        for device in await self.devices(uid):
            await self.revoke_device(uid, device.device)
        if user.email_hmac is not None:
            await self._delete_record(f"email:{user.email_hmac}")
        async for tally in self._db.docs(prefix=f"locals:{uid}:"):
            await self._delete(tally)
        await self._delete_record(f"user:{uid}")
        return user

    # -- devices -------------------------------------------------------------------------------

    async def create_device(self, uid: str, name: str) -> tuple[tokens.DeviceToken, Device]:
        token = tokens.DeviceToken.issue(uid, tokens.new_device_id())
        now = time.time()
        data = {
            "type": "device",
            "uid": uid,
            "device": token.device,
            "name": name,
            "token_hash": token.hash,
            "created": now,
            "last_seen": now,
        }
        await Document(self._db, f"device:{uid}:{token.device}", data=data).save()
        return token, _device(data)

    async def device_for_token(self, token: tokens.DeviceToken) -> Device | None:
        now = time.monotonic()
        recent = self._recent.get(token.hash)
        if recent is not None and now - recent[0] < RECENT_DEVICE_S:
            return recent[1]
        doc = await self._get(f"device:{token.uid}:{token.device}")
        if doc is None or not tokens.digests_equal(str(doc["token_hash"]), token.hash):
            return None
        if self._forgotten.get(f"{token.uid}:{token.device}", -1.0) >= now:
            return None  # revoked while this lookup was on its way: it may have read the record
        device = _device(doc.json)
        if len(self._recent) >= RECENT_DEVICES_MAX:
            self._recent.clear()
        self._recent[token.hash] = (now, device)
        return device

    def forget_device(self, uid: str, device: str) -> None:
        """Drop a device from the recent lookups, so its next request is checked upstream."""
        for key, (_, known) in list(self._recent.items()):
            if known.uid == uid and known.device == device:
                del self._recent[key]
        now = time.monotonic()
        if len(self._forgotten) >= RECENT_DEVICES_MAX:
            self._forgotten = {k: t for k, t in self._forgotten.items() if now - t < 60}
        self._forgotten[f"{uid}:{device}"] = now

    async def touch_device(self, device: Device) -> None:
        """Record that a device was seen; at most every few minutes, and never worth a retry."""
        doc = await self._get(f"device:{device.uid}:{device.device}")
        if doc is None:
            return
        doc["last_seen"] = time.time()
        with contextlib.suppress(ConflictError):
            await doc.save()

    async def devices(self, uid: str) -> list[Device]:
        return [_device(doc.json) async for doc in self._db.docs(prefix=f"device:{uid}:")]

    async def all_devices(self) -> list[Device]:
        return [_device(doc.json) async for doc in self._db.docs(prefix="device:")]

    async def revoke_device(self, uid: str, device: str) -> bool:
        self.forget_device(uid, device)
        revoked = await self._delete_record(f"device:{uid}:{device}")
        self.forget_device(uid, device)
        return revoked

    # -- email challenges ----------------------------------------------------------------------

    async def create_challenge(
        self, challenge_id: str, email_hmac: str, code_hash: str, permitted: bool
    ) -> None:
        data = {
            "type": "challenge",
            "email_hmac": email_hmac,
            "code_hash": code_hash,
            "attempts": 0,
            "expires": time.time() + CHALLENGE_TTL_S,
            "permitted": permitted,
        }
        await Document(self._db, f"challenge:{challenge_id}", data=data).save()

    async def redeem_challenge(self, challenge_id: str, code_hash: str) -> str | None:
        """Spend one attempt on a challenge; the email HMAC if the code is right, else None.

        The attempt is counted (a saved revision) before the code is compared, so parallel
        guesses through several replicas each cost an attempt. A right code consumes the
        challenge; so does the last wrong one.
        """
        async with self._redeeming.hold(challenge_id):
            return await self._redeem(challenge_id, code_hash)

    async def _redeem(self, challenge_id: str, code_hash: str) -> str | None:
        for _ in range(_RETRIES):
            doc = await self._get(f"challenge:{challenge_id}")
            if doc is None:
                return None
            if doc["attempts"] >= MAX_ATTEMPTS or doc["expires"] < time.time():
                await self._delete(doc)
                return None
            doc["attempts"] += 1
            try:
                await doc.save()
            except ConflictError:
                continue
            right = tokens.digests_equal(str(doc["code_hash"]), code_hash)
            if right and doc["permitted"]:
                email_hmac = str(doc["email_hmac"])
                return email_hmac if await self._delete(doc) else None
            if doc["attempts"] >= MAX_ATTEMPTS:
                await self._delete(doc)
            return None
        return None

    # -- enrollment and link codes -------------------------------------------------------------

    async def create_grant(self, kind: GrantKind, uid: str) -> tuple[str, float]:
        """A single-use code that signs a new device in to ``uid``; returns (code, expires)."""
        ttl = ENROLL_TTL_S if kind == "enroll" else LINK_TTL_S
        code = tokens.new_grouped_code(5 if kind == "enroll" else 3)
        expires = time.time() + ttl
        data = {"type": kind, "uid": uid, "expires": expires}
        await Document(self._db, f"{kind}:{tokens.code_lookup_key(code)}", data=data).save()
        return code, expires

    async def sweep_expired(self) -> int:
        """Delete challenges and codes past their expiry that nobody redeemed; returns how many.

        Every replica may sweep: two deleting the same record just make one conflict.
        """
        swept = 0
        now = time.time()
        for prefix in ("challenge:", "enroll:", "link:"):
            async for doc in self._db.docs(prefix=prefix):
                if float(doc["expires"]) < now and await self._delete(doc):
                    swept += 1
        return swept

    async def redeem_grant(self, kind: GrantKind, code: str) -> str | None:
        doc = await self._get(f"{kind}:{tokens.code_lookup_key(code)}")
        if doc is None:
            return None
        uid, expires = str(doc["uid"]), float(doc["expires"])
        # Deleting is the redemption: of two concurrent redeemers only one wins the revision.
        if not await self._delete(doc) or expires < time.time():
            return None
        return uid
