"""Devices: ``device:<uid>:<device>`` (name, token_hash, created, last_seen).

A device's token is checked against its record's hash on every request; a replication sends
several requests a second, so a check that passed is trusted for RECENT_DEVICE_S, and forgotten
at once when a revocation is seen: here, or on any replica through the records feed
(gateway/auth/revocations.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from aiocouch import ConflictError

from gateway.auth import tokens
from gateway.auth.records.base import Records, iso
from gateway.auth.records.claims import Claims
from gateway.errors import Forbidden

LAST_SEEN_GRANULARITY_S = 300
RECENT_DEVICE_S = 2.0
RECENT_DEVICES_MAX = 10_000
KIND = "devices"


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


def _device(data: dict[str, Any]) -> Device:
    return Device(data["uid"], data["device"], data["name"], data["created"], data["last_seen"])


class Devices:
    def __init__(self, records: Records, claims: Claims) -> None:
        self._records = records
        self._claims = claims
        self._recent: dict[str, tuple[float, Device]] = {}  # token hash -> (when checked, device)
        self._forgotten: dict[str, float] = {}  # "uid:device" -> when revoked (monotonic)

    async def create(self, uid: str, name: str, most: int = 0) -> tuple[tokens.DeviceToken, Device]:
        """Sign in one more device of ``uid``: its place under ``most`` (the devices-per-user
        limit, 0: none) is claimed first (:mod:`.claims`), then its record written; 403 when
        the account has ``most`` already."""
        token = tokens.DeviceToken.issue(uid, tokens.new_device_id())
        refusal = Forbidden(f"device limit reached: an account may have {most} devices; revoke one")
        await self._claims.claim(
            uid, KIND, token.device, most, refusal, existing=lambda: self._existing(uid)
        )
        try:
            return token, await self._write(uid, name, token)
        except BaseException:
            await asyncio.shield(self._claims.release(uid, KIND, [token.device]))
            raise

    async def _existing(self, uid: str) -> dict[str, float]:
        return {device.device: 0.0 for device in await self.of(uid)}

    async def _write(self, uid: str, name: str, token: tokens.DeviceToken) -> Device:
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
        await self._records.new(f"device:{uid}:{token.device}", data).save()
        return _device(data)

    async def for_token(self, token: tokens.DeviceToken) -> Device | None:
        now = time.monotonic()
        recent = self._recent.get(token.hash)
        if recent is not None and now - recent[0] < RECENT_DEVICE_S:
            # Keyed by the secret's hash: the ids the token names must be the device's too,
            # or a token made of one's own secret and anyone's ids would pass as one's own.
            known = recent[1]
            return known if (known.uid, known.device) == (token.uid, token.device) else None
        doc = await self._records.get(f"device:{token.uid}:{token.device}")
        if doc is None or not tokens.digests_equal(str(doc["token_hash"]), token.hash):
            return None
        if self._forgotten.get(f"{token.uid}:{token.device}", -1.0) >= now:
            return None  # revoked while this lookup was on its way: it may have read the record
        device = _device(doc.json)
        if len(self._recent) >= RECENT_DEVICES_MAX:
            self._recent.clear()
        self._recent[token.hash] = (now, device)
        return device

    def forget(self, uid: str, device: str) -> None:
        """Drop a device from the recent lookups, so its next request is checked upstream."""
        for key, (_, known) in list(self._recent.items()):
            if known.uid == uid and known.device == device:
                del self._recent[key]
        now = time.monotonic()
        if len(self._forgotten) >= RECENT_DEVICES_MAX:
            self._forgotten = {k: t for k, t in self._forgotten.items() if now - t < 60}
        self._forgotten[f"{uid}:{device}"] = now

    async def touch(self, device: Device) -> None:
        """Record that a device was seen; at most every few minutes, and never worth a retry."""
        doc = await self._records.get(f"device:{device.uid}:{device.device}")
        if doc is None:
            return
        doc["last_seen"] = time.time()
        with contextlib.suppress(ConflictError):
            await doc.save()

    async def of(self, uid: str) -> list[Device]:
        return [_device(doc.json) async for doc in self._records.with_prefix(f"device:{uid}:")]

    async def all(self) -> list[Device]:
        return [_device(doc.json) async for doc in self._records.with_prefix("device:")]

    async def revoke(self, uid: str, device: str) -> bool:
        self.forget(uid, device)
        revoked = await self._records.delete_record(f"device:{uid}:{device}")
        self.forget(uid, device)
        await self._claims.release(uid, KIND, [device])  # after: a place is never freed early
        return revoked
