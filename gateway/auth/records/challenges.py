"""Sign-in challenges: ``challenge:<id>`` (email_hmac, code_hash, attempts, expires, permitted).

An attempt is counted (a saved revision) before the code is compared, so parallel guesses through
several replicas each cost one; a right code consumes the challenge, and so does the last wrong
one.
"""

from __future__ import annotations

import time

from aiocouch import ConflictError

from gateway.auth import tokens
from gateway.auth.records.base import RETRIES, KeyedLocks, Records

MAX_ATTEMPTS = 5
CHALLENGE_TTL_S = 600
PREFIX = "challenge:"


class Challenges:
    def __init__(self, records: Records) -> None:
        self._records = records
        # Redemptions of one challenge run one at a time here: dozens of parallel updates of one
        # record crash pouchdb-server. Across replicas the revision check still decides.
        self._redeeming = KeyedLocks()

    async def create(
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
        await self._records.new(f"{PREFIX}{challenge_id}", data).save()

    async def redeem(self, challenge_id: str, code_hash: str) -> str | None:
        """Spend one attempt on a challenge; the email HMAC if the code is right, else None."""
        async with self._redeeming.hold(challenge_id):
            return await self._redeem(challenge_id, code_hash)

    async def _redeem(self, challenge_id: str, code_hash: str) -> str | None:
        records = self._records
        for _ in range(RETRIES):
            doc = await records.get(f"{PREFIX}{challenge_id}")
            if doc is None:
                return None
            if doc["attempts"] >= MAX_ATTEMPTS or doc["expires"] < time.time():
                await records.delete(doc)
                return None
            doc["attempts"] += 1
            try:
                await doc.save()
            except ConflictError:
                continue
            right = tokens.digests_equal(str(doc["code_hash"]), code_hash)
            if right and doc["permitted"]:
                email_hmac = str(doc["email_hmac"])
                return email_hmac if await records.delete(doc) else None
            if doc["attempts"] >= MAX_ATTEMPTS:
                await records.delete(doc)
            return None
        return None
