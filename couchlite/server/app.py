"""The store as an aiohttp application: CouchDB's HTTP API at the root, on loopback.

Routing is done here on the *raw* path, segment by segment, as CouchDB does: ``%2F`` inside a
segment stays part of a document id (``_design%2Fx``), while an attachment name may span several
raw segments. aiohttp's router decodes before matching, so one catch-all route hands over.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import unquote

from aiohttp import web

from .. import databases, engine
from ..documents import valid_db_name
from ..errors import (
    BadRequest,
    CouchError,
    IllegalDatabaseName,
    MethodNotAllowed,
    NotFound,
    Unauthorized,
    UnsupportedMediaType,
    answered,
)
from ..storage import Storage
from . import changes, docs
from .params import integer, json_body, json_response
from .state import STATE, StoreState

DEFAULT_MAX_REQUEST = 64 * 1024 * 1024
log = logging.getLogger("couchgate.store")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_store_app(
    data_dir: Path,
    *,
    admin_user: str,
    admin_password: str,
    max_request_size: int = DEFAULT_MAX_REQUEST,
) -> web.Application:
    """The embedded CouchDB-compatible store; data in ``data_dir/store.sqlite3``."""
    app = web.Application(middlewares=[_errors, _authenticate], client_max_size=max_request_size)
    app[STATE] = StoreState(Storage(Path(data_dir) / "store.sqlite3"), admin_user, admin_password)
    app.cleanup_ctx.append(_storage_ctx)
    app.on_shutdown.append(_end_feeds)
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app


async def _storage_ctx(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    state.storage.on_external_write = state.hub.notify_all
    await state.storage.open()
    state.uuid = await state.storage.write(engine.server_uuid, uuid.uuid4().hex)
    yield
    state.closing = True
    state.hub.close()
    await state.storage.close()


async def _end_feeds(app: web.Application) -> None:
    """Live feeds end at shutdown instead of holding the server for its grace period."""
    app[STATE].closing = True
    app[STATE].hub.close()


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The outermost layer: every refusal, aiohttp's own (a body over ``client_max_size``) and
    an unforeseen failure too, goes out as CouchDB's JSON error body, never as text/plain."""
    try:
        return await answered(request, handler)
    except web.HTTPException:
        raise  # a redirect (answered re-raises below 400): aiohttp sends it as it is
    except (ConnectionError, asyncio.CancelledError):
        raise  # the client went away: there is nobody to answer
    except Exception as exc:
        # The type only: a message could hold a document's content.
        log.error("store request failed: %s", type(exc).__name__)
        return CouchError().response()


_OPEN_PATHS = frozenset({"/", "/_up", "/_session"})


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Basic auth as the one admin for everything but the welcome and health endpoints."""
    if request.method in ("GET", "HEAD") and request.rel_url.raw_path in _OPEN_PATHS:
        return await handler(request)
    if request.rel_url.raw_path == "/_session":
        return await handler(request)  # it answers for itself
    state = request.app[STATE]
    if not _is_admin(request.headers.get("Authorization", ""), state):
        raise Unauthorized("Name or password is incorrect.")
    return await handler(request)


def _is_admin(header: str, state: StoreState) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    user_ok = hmac.compare_digest(user.encode(), state.admin_user.encode())
    password_ok = hmac.compare_digest(password.encode(), state.admin_password.encode())
    return user_ok and password_ok


def split_path(raw_path: str) -> list[str]:
    """Raw path -> decoded segments; one trailing slash is ignored (``/db/`` is ``/db``)."""
    segments = [unquote(s) for s in raw_path.split("/")[1:]]
    if segments and segments[-1] == "":
        segments.pop()
    return segments


async def _dispatch(request: web.Request) -> web.StreamResponse:
    segments = split_path(request.rel_url.raw_path)
    if not segments:
        return await _root(request)
    if segments[0].startswith("_"):
        return await _server(request, segments)
    db = segments[0]
    if not valid_db_name(db):
        raise IllegalDatabaseName(db)
    if len(segments) == 1:
        return await _database(request, db)
    second = segments[1]
    if second in ("_local", "_design") and len(segments) >= 3:
        doc_id = f"{second}/{segments[2]}"
        return await docs.document(request, db, doc_id, segments[3:])
    if len(segments) == 2 and second == "_changes":
        return await changes.changes(request, db)
    endpoint = docs.DB_ENDPOINTS.get(second) or _DB_ADMIN.get(second)
    if endpoint is not None and len(segments) == 2:
        return await endpoint(request, db)
    # Anything else is a document (CouchDB answers bad_request for other "_" ids).
    return await docs.document(request, db, second, segments[2:])


async def _root(request: web.Request) -> web.StreamResponse:
    _allow(request, "GET", "HEAD")
    state = request.app[STATE]
    return json_response(
        {
            "couchdb": "Welcome",
            "version": "3.3.3-compatible",
            "vendor": {"name": "couchgate"},
            "uuid": state.uuid,
            "features": [],
        }
    )


async def _server(request: web.Request, segments: list[str]) -> web.StreamResponse:
    state = request.app[STATE]
    if segments == ["_up"]:
        _allow(request, "GET", "HEAD")
        return json_response({"status": "ok"})
    if segments == ["_all_dbs"]:
        _allow(request, "GET", "HEAD")
        return json_response(await state.storage.read(databases.list_dbs))
    if segments == ["_session"]:
        return _session(request)
    if segments == ["_db_updates"]:
        return await changes.db_updates(request)
    if segments == ["_uuids"]:
        _allow(request, "GET", "HEAD")
        count = integer(request.query, "count", 1) or 1
        if count > 1000:
            raise BadRequest("count parameter too large")
        return json_response({"uuids": [uuid.uuid4().hex for _ in range(count)]})
    raise NotFound("Database does not exist.")


def _session(request: web.Request) -> web.StreamResponse:
    """``/_session`` as CouchDB answers it for Basic auth (the store's only kind): who is asking.

    There are no cookie sessions here. ``POST`` answers 404, which CouchDB's replicator takes as
    "no session support" and goes on with Basic auth, so it can replicate to and from the store.
    """
    state = request.app[STATE]
    if request.method not in ("GET", "HEAD"):
        raise NotFound("cookie sessions are not supported by the embedded store")
    header = request.headers.get("Authorization")
    info: dict[str, object] = {"authentication_handlers": ["default"]}
    if header is None:
        return json_response({"ok": True, "userCtx": {"name": None, "roles": []}, "info": info})
    if not _is_admin(header, state):
        raise Unauthorized("Name or password is incorrect.")
    info["authenticated"] = "default"
    user = {"name": state.admin_user, "roles": ["_admin"]}
    return json_response({"ok": True, "userCtx": user, "info": info})


async def _database(request: web.Request, db: str) -> web.StreamResponse:
    state = request.app[STATE]
    if request.method in ("GET", "HEAD"):
        info = await state.storage.read(databases.db_info, db)
        info["compact_running"] = state.storage.compacting
        return json_response(info)
    if request.method == "PUT":
        await state.storage.write(engine.create_db, db)
        return json_response({"ok": True}, status=201, headers={"Location": f"/{db}"})
    if request.method == "DELETE":
        await state.storage.write(engine.delete_db, db)
        state.hub.notify(db)
        return json_response({"ok": True})
    if request.method == "POST":
        return await docs.post_document(request, db)
    raise MethodNotAllowed(("DELETE", "GET", "HEAD", "POST", "PUT"))


async def _security(request: web.Request, db: str) -> web.StreamResponse:
    state = request.app[STATE]
    if request.method == "GET":
        return json_response(await state.storage.read(databases.get_security, db))
    _allow(request, "GET", "PUT")
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("Security object must be a JSON object")
    await state.storage.write(engine.set_security, db, body)
    return json_response({"ok": True})


async def _revs_limit(request: web.Request, db: str) -> web.StreamResponse:
    state = request.app[STATE]
    if request.method == "GET":
        return json_response(await state.storage.read(databases.get_revs_limit, db))
    _allow(request, "GET", "PUT")
    body = await json_body(request)
    if not isinstance(body, int) or isinstance(body, bool) or body < 1:
        raise BadRequest("Rev limit has to be a positive integer")
    await state.storage.write(engine.set_revs_limit, db, body)
    return json_response({"ok": True})


async def _ensure_full_commit(request: web.Request, db: str) -> web.StreamResponse:
    """Every answered write is already fsynced (synchronous=FULL): nothing left to flush."""
    _allow(request, "POST")
    await request.app[STATE].storage.read(databases.get_revs_limit, db)
    return json_response({"ok": True, "instance_start_time": "0"}, status=201)


async def _compact(request: web.Request, db: str) -> web.StreamResponse:
    """CouchDB's ``_compact``: started in the background, answered at once (202)."""
    _allow(request, "POST")
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")
    storage = request.app[STATE].storage
    found = await storage.read(engine.get_db, db)
    storage.start_compaction(found.id)
    return json_response({"ok": True}, status=202)


_DB_ADMIN: dict[str, Callable[[web.Request, str], Awaitable[web.StreamResponse]]] = {
    "_security": _security,
    "_revs_limit": _revs_limit,
    "_ensure_full_commit": _ensure_full_commit,
    "_compact": _compact,
}


def _allow(request: web.Request, *methods: str) -> None:
    if request.method not in methods:
        raise MethodNotAllowed(methods)
