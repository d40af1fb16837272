"""couchgate's own connection to the upstream: the shared HTTP session, admin calls via aiocouch,
and the naming of per-user databases.

One connection pool serves both the streaming proxy (``http``) and aiocouch's admin calls, and
no cookies are ever kept: one session carries many users' requests.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

import aiohttp
from aiocouch import ConflictError, CouchDB, Database, PreconditionFailedError
from aiocouch.exception import NotFoundError, RemoteResponseError
from yarl import URL

from gateway.config import Settings
from gateway.errors import NotFound, UpstreamUnavailable
from gateway.upstream.member_auth import admin_headers

log = logging.getLogger(__name__)

ADMIN_CALL_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)
RECORDS_SECURITY = {
    "admins": {"names": [], "roles": ["_admin"]},
    "members": {"names": [], "roles": ["_admin"]},
}


def member_name(uid: str) -> str:
    """The user's name as the upstream knows it (JWT ``sub``, ``_security`` member)."""
    return f"u{uid}"


def db_name(uid: str, app: str) -> str:
    """One upstream database per user per app. uids have a fixed length, so this is unambiguous."""
    return f"u{uid}-{app}"


@dataclass
class Backend:
    settings: Settings
    url: URL
    http: aiohttp.ClientSession
    couch: CouchDB
    records: Database
    http10: aiohttp.ClientSession
    """The same pool, asking in HTTP/1.0: for ``eventsource`` feeds, which CouchDB 3.5.2 ends
    twice in HTTP/1.1 (one more chunk after the last, which an HTTP/1.1 client reads as a
    broken answer or as the start of the next one). In HTTP/1.0 it sends the feed unchunked
    and closes the connection: both endings are then just bytes of the body."""
    records_ready: bool = False
    """Whether the records database is known to exist with its admin-only ``_security``; until
    then the gateway answers 503 (see :mod:`gateway.ops.health`)."""
    _selector_in_query: bool | None = None

    async def ensure_records(self) -> None:
        """Create the records database if need be and keep it admin-only. Raises what the
        upstream call raises (unreachable, credentials refused)."""
        records = await self.couch.create(self.settings.records_db, exists_ok=True)
        security = await records.security()
        if security.admin_roles != ["_admin"] or security.member_roles != ["_admin"]:
            security.update(RECORDS_SECURITY)
            await security.save()
        self.records_ready = True

    def db_url(self, uid: str, app: str) -> URL:
        return self.url / db_name(uid, app)

    async def create_user_db(self, uid: str, app: str) -> bool:
        """Create the database with the user as its only member; False if it already existed.

        ``_security`` is checked in both cases, so a creation that raced or was interrupted
        before its ``_security`` was set is repaired by the next attempt.
        """
        try:
            await self.couch.create(db_name(uid, app))
            created = True
        except PreconditionFailedError:
            created = False
        if not await self.ensure_member(uid, app):
            # Deleted between its creation and its _security (a DELETE of the same app).
            raise NotFound("Database does not exist.")
        return created

    async def ensure_member(self, uid: str, app: str) -> bool:
        """Make the user the database's only member (no admins) unless it is so already; False
        if there is no such database.

        A new CouchDB database is admin-only until its ``_security`` is written, so one whose
        creation was cut short refuses its own user (403) until this runs.
        """
        db = Database(self.couch, db_name(uid, app))
        wanted = {
            "admins": {"names": [], "roles": []},
            "members": {"names": [member_name(uid)], "roles": []},
        }
        try:
            for _ in range(3):
                security = await db.security()
                if security.members == [member_name(uid)] and security.admins in (None, []):
                    break
                security.update(wanted)
                try:
                    await security.save()
                    break
                except ConflictError:  # another request provisioned it at the same moment
                    continue
        except NotFoundError:
            return False
        except RemoteResponseError as exc:
            # CouchDB answers 500 for the _security of a database that another replica is
            # deleting at that moment: gone is gone; any other 500 is the upstream's fault.
            if exc.status != 500 or await self._exists(db.id):
                raise
            return False
        return True

    async def _exists(self, name: str) -> bool:
        try:
            await self.couch[name]
        except NotFoundError:
            return False
        return True

    async def delete_user_db(self, uid: str, app: str) -> bool:
        try:
            await Database(self.couch, db_name(uid, app)).delete()
        except NotFoundError:
            return False
        return True

    async def user_db_apps(self, uid: str) -> list[str]:
        """The apps of every upstream database named for this user, whatever the records say.

        Asked by key range (CouchDB), filtered here too: pouchdb-server ignores the range.
        """
        prefix = db_name(uid, "")
        params = {"startkey": json.dumps(prefix), "endkey": json.dumps(prefix + "\ufff0")}
        try:
            async with self.http.get(
                self.url / "_all_dbs",
                params=params,
                headers={**admin_headers(self.settings), "Accept": "application/json"},
                timeout=ADMIN_CALL_TIMEOUT,
            ) as resp:
                if resp.status != 200:
                    raise UpstreamUnavailable("the database did not list its databases")
                names = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise UpstreamUnavailable() from None
        if not isinstance(names, list):
            raise UpstreamUnavailable("the database did not list its databases")
        return sorted(
            n[len(prefix) :] for n in names if isinstance(n, str) and n.startswith(prefix)
        )

    async def delete_user_dbs(self, uid: str, known: Iterable[str] = ()) -> list[str]:
        """Delete every database of this user: those named for it upstream and ``known``."""
        deleted = []
        for app in sorted({*known, *await self.user_db_apps(uid)}):
            if await self.delete_user_db(uid, app):
                deleted.append(app)
        return deleted

    async def reads_selector_from_query(self) -> bool:
        """Whether the upstream reads a ``_changes`` selector from the query, not the POST body
        as CouchDB does: pouchdb-server (express-pouchdb) does, and dies of a selector filter
        without one. Asked once; CouchDB must not get it there, as a long query breaks it."""
        if self._selector_in_query is None:
            try:
                info = await self.server_info()
            except (aiohttp.ClientError, TimeoutError, ValueError):
                raise UpstreamUnavailable() from None
            self._selector_in_query = "express-pouchdb" in info
        return self._selector_in_query

    async def server_info(self) -> dict[str, object]:
        info: dict[str, object] = await self.couch.info()
        return info


def _admin_auth(settings: Settings) -> aiohttp.ClientMiddlewareType:
    """Authenticate aiocouch's calls as the service admin (aiohttp's BasicAuth is deprecated),
    and ask for JSON: CouchDB and pouchdb-server answer text/plain to clients that don't."""
    headers = admin_headers(settings)

    async def add_auth(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        request.headers.update(headers)
        request.headers["Accept"] = "application/json"
        return await handler(request)

    return add_auth


def _upstream_url(settings: Settings) -> URL:
    assert settings.upstream_url is not None  # Settings requires it
    return URL(settings.upstream_url.rstrip("/"))


@contextlib.asynccontextmanager
async def open_backend(
    settings: Settings, trace_configs: Sequence[aiohttp.TraceConfig] = ()
) -> AsyncIterator[Backend]:
    """Open the pool; no request goes out yet, so a gateway starts while its upstream is down
    (call :meth:`Backend.ensure_records` before relying on the records)."""
    url = _upstream_url(settings)
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, enable_cleanup_closed=True)
    http = aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        # Bytes pass through untouched (auto_decompress=False), so ask for them uncompressed.
        headers={"Accept-Encoding": "identity"},
        # Feeds may stay open for hours: no total timeout; reads are bounded per route.
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        trace_configs=list(trace_configs) or None,
    )
    http10 = aiohttp.ClientSession(
        connector=connector,
        connector_owner=False,
        version=aiohttp.HttpVersion10,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"Accept-Encoding": "identity"},
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        trace_configs=list(trace_configs) or None,
    )
    couch = CouchDB(
        str(url),
        middlewares=(_admin_auth(settings),),
        connector=connector,
        connector_owner=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=ADMIN_CALL_TIMEOUT,
        trace_configs=list(trace_configs) or None,
    )
    try:
        records = Database(couch, settings.records_db)
        yield Backend(settings, url, http, couch, records, http10)
    finally:
        await couch.close()
        await http10.close()
        await http.close()
