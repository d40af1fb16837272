"""What an account holds and how it goes away: shared by the admin dashboard and self-service.

Both only ever see counts and sizes from the upstream's db info: the documents are ciphertext and
neither the admin nor this module opens them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp
from aiocouch import Database
from aiocouch.exception import NotFoundError
from aiohttp import web

from gateway import keys
from gateway.auth.records import IdentityStore
from gateway.auth.records.users import User
from gateway.errors import NotFound, Unauthorized
from gateway.shares import SHARES
from gateway.upstream.backend import Backend, db_name

log = logging.getLogger(__name__)


async def revoke(app: web.Application, uid: str, device: str) -> None:
    """Revoke a device and end its open live feeds on this replica at once (other replicas
    follow the records database and end theirs within one long poll)."""
    if not await app[keys.IDENTITIES].devices.revoke(uid, device):
        raise NotFound("no such device")
    app[keys.FEEDS].close_device(f"{uid}:{device}")


@dataclass(frozen=True, slots=True)
class AppUsage:
    """One app's remote copy, as the upstream reports it (None where it reports nothing)."""

    app: str
    doc_count: int | None
    size: int | None

    def public(self) -> dict[str, object]:
        return {"app": self.app, "doc_count": self.doc_count, "size": self.size}


def _size(info: dict[str, object]) -> int | None:
    """CouchDB 3 reports ``sizes.file``; older servers and pouchdb-server ``disk_size``."""
    sizes = info.get("sizes")
    if isinstance(sizes, dict):
        for field in ("file", "external", "active"):
            if isinstance(sizes.get(field), int):
                return int(sizes[field])
    disk = info.get("disk_size")
    return disk if isinstance(disk, int) else None


async def app_usage(backend: Backend, uid: str, app: str) -> AppUsage:
    try:
        info = await Database(backend.couch, db_name(uid, app)).info()
    except NotFoundError:
        return AppUsage(app, None, None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("db info failed: %s", type(exc).__name__)
        return AppUsage(app, None, None)
    count = info.get("doc_count")
    return AppUsage(app, count if isinstance(count, int) else None, _size(info))


async def usage(backend: Backend, user: User) -> list[AppUsage]:
    return [await app_usage(backend, user.uid, app) for app in user.apps]


async def provision_app(
    identities: IdentityStore, backend: Backend, uid: str, app: str, most: int
) -> tuple[bool, bool]:
    """Record the app first (the record's revision enforces ``most``, the apps-per-user limit,
    across replicas), then create its database; a creation that fails gives the place back.
    Held under the app's lifecycle lock, as its deletion and share links are. Returns whether
    the record gained the app and whether the database was made. Used by ``PUT /db/<app>`` and
    the import alike, so no path makes an app past the limit."""
    async with identities.app_changes.hold(f"{uid}/{app}"):
        added = await identities.add_app(uid, app, most)
        if added is None:
            raise Unauthorized("invalid or revoked token")  # the account was removed
        try:
            created = await backend.create_user_db(uid, app)
        except BaseException:
            if added:
                await asyncio.shield(identities.remove_app(uid, app))
            raise
        if await identities.user(uid) is None:
            # The account was deleted while this was under way: leave nothing of it behind.
            await backend.delete_user_db(uid, app)
            raise Unauthorized("invalid or revoked token")
    return added, created


async def delete_app_data(app: web.Application, uid: str, name: str) -> bool:
    """Delete the remote copy of one app, listed in the records or not; the devices keep
    theirs. False if there was none."""
    identities = app[keys.IDENTITIES]
    async with identities.app_changes.hold(f"{uid}/{name}"):
        deleted = await app[keys.BACKEND].delete_user_db(uid, name)
        await identities.remove_app(uid, name)
        await app[SHARES].delete_where(uid, [name])  # after: a share made meanwhile checks the app
    return deleted


async def delete_account(app: web.Application, uid: str) -> User | None:
    """Revoke every device (ending its feeds here at once), then forget the account and delete
    every database it had. None if there is no such account."""
    identities = app[keys.IDENTITIES]
    devices = await identities.devices.of(uid)
    user = await identities.remove_user(uid)
    if user is None:
        return None
    for device in devices:
        app[keys.FEEDS].close_device(device.key)
    # Every database named for the account, including any the records lost track of.
    await app[keys.BACKEND].delete_user_dbs(uid, user.apps)
    await app[SHARES].delete_where(uid)
    return user
