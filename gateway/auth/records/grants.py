"""Enrollment and link codes: ``enroll:<sha256(code)>``, ``link:<sha256(code)>`` (uid, expires).

A code signs a new device in to its account, once: deleting the record is the redemption, so of
two concurrent redeemers only one wins the revision.
"""

from __future__ import annotations

import time
from typing import Literal

from gateway.auth import tokens
from gateway.auth.records.base import Records

ENROLL_TTL_S = 7 * 24 * 3600
LINK_TTL_S = 300
PREFIXES = ("enroll:", "link:")

GrantKind = Literal["enroll", "link"]


class Grants:
    def __init__(self, records: Records) -> None:
        self._records = records

    async def create(self, kind: GrantKind, uid: str) -> tuple[str, float]:
        """A single-use code that signs a new device in to ``uid``; returns (code, expires)."""
        ttl = ENROLL_TTL_S if kind == "enroll" else LINK_TTL_S
        code = tokens.new_grouped_code(5 if kind == "enroll" else 3)
        expires = time.time() + ttl
        data = {"type": kind, "uid": uid, "expires": expires}
        await self._records.new(f"{kind}:{tokens.code_lookup_key(code)}", data).save()
        return code, expires

    async def redeem(self, kind: GrantKind, code: str) -> str | None:
        doc = await self._records.get(f"{kind}:{tokens.code_lookup_key(code)}")
        if doc is None:
            return None
        uid, expires = str(doc["uid"]), float(doc["expires"])
        if not await self._records.delete(doc) or expires < time.time():
            return None
        return uid
