"""The dashboard's own records, next to the identity records in the admin-only records database,
so every gateway replica sees the same admin password:

- ``admin:password``   the Argon2id hash (``$argon2id$...``) of the admin password, and when it
  was set. The password itself is never stored, and the hash never leaves this module's callers.
"""

from __future__ import annotations

import asyncio
import time

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
from aiocouch import ConflictError, Database, NotFoundError
from aiocouch.document import Document

PASSWORD_DOC = "admin:password"
# libsodium's "interactive" memory with three passes: a guess costs 64 MiB and ~0.1 s.
OPSLIMIT = 3
MEMLIMIT = argon2id.MEMLIMIT_INTERACTIVE
MIN_PASSWORD_LENGTH = 12
_RETRIES = 5


async def hash_password(password: str) -> str:
    """Argon2id in a worker thread: it is slow by design and must never block the event loop."""
    hashed = await asyncio.to_thread(
        argon2id.str, password.encode(), opslimit=OPSLIMIT, memlimit=MEMLIMIT
    )
    return hashed.decode()


async def verify_password(hashed: str, password: str) -> bool:
    def check() -> bool:
        try:
            return bool(argon2id.verify(hashed.encode(), password.encode()))
        except nacl.exceptions.InvalidkeyError:
            return False

    return await asyncio.to_thread(check)


class AdminRecords:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def password_hash(self) -> str | None:
        try:
            doc = await self._db.get(PASSWORD_DOC)
        except NotFoundError:
            return None
        value = doc.json.get("hash")
        return value if isinstance(value, str) else None

    async def set_password(self, password: str) -> None:
        """Store the hash of a new admin password, replacing any earlier one."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
        hashed = await hash_password(password)
        for _ in range(_RETRIES):
            try:
                doc = await self._db.get(PASSWORD_DOC)
            except NotFoundError:
                doc = Document(self._db, PASSWORD_DOC, data={})
            doc["type"] = "admin"
            doc["hash"] = hashed
            doc["set"] = time.time()
            try:
                await doc.save()
                return
            except ConflictError:
                continue
        raise RuntimeError("could not store the admin password")  # pragma: no cover
