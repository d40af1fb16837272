"""``GET|POST /db/_changes`` in its four feeds.

Everything that can fail (bad parameters, a missing database) is checked before ``prepare()``:
once a live feed has started streaming, an error can only end the stream, never become JSON.
Live feeds wait on the database's ``FeedHub`` event, so they answer as soon as a write commits,
and send heartbeats (newlines, or SSE comments) while idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from .. import reads, selector
from ..changes import (
    ALL_DBS,
    ChangesPage,
    ChangesQuery,
    current_db_updates_seq,
    current_seq,
    read_changes,
    read_db_updates,
)
from ..errors import BadRequest, MethodNotAllowed, NotFound, UnsupportedMediaType
from .params import dumps, integer, json_object, json_param, json_response
from .state import STATE, StoreState

DEFAULT_TIMEOUT_MS = 60_000
DEFAULT_LIMIT = 10**15  # CouchDB's changes_args limit when none is given
SQL_MAX = 2**63 - 1  # SQLite's integers: a larger limit means no limit
# How often an idle feed without heartbeat checks whether its client went away.
_IDLE_CHECK_S = 5.0


@dataclass(frozen=True)
class FeedParams:
    feed: str
    query: ChangesQuery
    heartbeat_s: float | None
    timeout_s: float | None
    seq_interval: int = 1
    """CouchDB's ``seq_interval``: only every n-th row carries its ``seq`` (null otherwise)."""


async def changes(request: web.Request, db: str) -> web.StreamResponse:
    if request.method not in ("GET", "POST"):
        raise MethodNotAllowed(("GET", "POST"))
    state = request.app[STATE]
    body: dict[str, Any] = {}
    if request.method == "POST":
        if request.content_type != "application/json":
            raise UnsupportedMediaType("Content-Type must be application/json")
        if await request.read():
            body = await json_object(request)
    params = await _params(request, state, db, body)
    if params.feed == "normal":
        page = await state.storage.read(read_changes, db, params.query)
        return json_response(_page_json(page, params.seq_interval, params.query.limit))
    if params.feed == "longpoll":
        return await _longpoll(request, state, db, params)
    return await _continuous(request, state, db, params)


async def _params(
    request: web.Request, state: StoreState, db: str, body: dict[str, Any]
) -> FeedParams:
    q = request.query
    feed = q.get("feed", "normal")
    if feed == "live":
        feed = "continuous"  # CouchDB's other name for it
    if feed not in ("normal", "longpoll", "continuous", "eventsource"):
        raise BadRequest("Supported `feed` types: normal, continuous, live, longpoll, eventsource")
    seq_now = await state.storage.read(current_seq, db)  # 404 before anything is sent
    since = _since(q.get("since", body.get("since", 0)), seq_now)
    doc_ids: frozenset[str] | None = None
    chosen: Mapping[str, Any] | None = None
    filter_name = q.get("filter", body.get("filter"))
    if filter_name == "_doc_ids":
        raw = body.get("doc_ids") if "doc_ids" in body else json_param(q, "doc_ids")
        if not isinstance(raw, list) or not all(isinstance(i, str) for i in raw):
            raise BadRequest("`doc_ids` filter parameter is not a list of doc ids.")
        doc_ids = frozenset(raw)
    elif filter_name == "_selector":
        if request.method != "POST":
            raise BadRequest("Selector must be specified in POST payload")
        if not isinstance(body.get("selector"), dict):
            raise BadRequest("Selector error: expected a JSON object")
        chosen = selector.validate(body["selector"])
    elif filter_name == "_view":
        raise BadRequest("`view` filter parameter is not provided.")
    elif filter_name is not None and filter_name != "_design":
        await _design_filter(state, db, str(filter_name))
    heartbeat_s, timeout_s = _timing(q)
    query = ChangesQuery(
        since=since,
        limit=_limit(q),
        descending=_true(q, "descending"),
        all_docs=q.get("style") == "all_docs",
        include_docs=_true(q, "include_docs"),
        conflicts=_true(q, "conflicts"),
        attachments=_true(q, "attachments"),
        doc_ids=doc_ids,
        selector=chosen,
        design_only=filter_name == "_design",
    )
    return FeedParams(feed, query, heartbeat_s, timeout_s, _seq_interval(q))


def _seq_interval(q: Mapping[str, str]) -> int:
    raw = q.get("seq_interval")
    if raw is None:
        return 1
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise BadRequest("invalid_seq_interval")
    return int(raw)


def _with_interval(
    rows: list[dict[str, Any]], every: int, limit: int | None, sent: int = 0
) -> list[dict[str, Any]]:
    """Rows as CouchDB 3.5.2 sends them with ``seq_interval``: a row keeps its ``seq`` when the
    feed's remaining ``limit`` (CouchDB's default 10^15 when none is given) is a multiple of
    ``every`` as the row is sent; ``sent`` counts the rows of earlier pages of the feed."""
    if every == 1:
        return rows
    left = DEFAULT_LIMIT if limit is None else limit
    return [
        row if (left - sent - i) % every == 0 else {**row, "seq": None}
        for i, row in enumerate(rows)
    ]


def _true(q: Mapping[str, str], name: str) -> bool:
    """_changes reads a flag as CouchDB does there: "true" is true, anything else false."""
    return q.get(name) == "true"


def _limit(q: Mapping[str, str]) -> int | None:
    """``limit`` as CouchDB's _changes reads it."""
    raw = q.get("limit")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        # CouchDB answers 500 (badarg); a refusal in its shape here.
        raise BadRequest("Invalid value for integer: 'limit'") from None
    if value < 0:
        return None  # CouchDB sends everything for a negative limit
    return min(value, SQL_MAX)


async def _design_filter(state: StoreState, db: str, name: str) -> None:
    """``ddoc/filter``: CouchDB's 404 when the design document is missing; the store runs no
    JavaScript, so a filter function it has is refused."""
    parts = name.split("/")
    if len(parts) != 2:
        raise BadRequest("`filter` must be of the form `designname/filtername`")
    ddoc = parts[0]
    try:
        await state.storage.read(reads.open_doc, db, f"_design/{ddoc}", None, reads.DocOptions())
    except NotFound:
        raise NotFound("missing") from None
    raise BadRequest(f"filter {name!r} is not supported by the embedded store")


def _since(raw: object, seq_now: int) -> int:
    """``since``: ``now``, an integer, or a CouchDB-style ``"N-opaque"`` (we use its number).
    One beyond the current seq means "nothing yet": it reads as the current seq."""
    if raw == "now":
        return seq_now
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return min(raw, seq_now)
    if isinstance(raw, str):
        head = raw.split("-", 1)[0]
        if head.isascii() and head.isdigit():
            return min(int(head), seq_now)
        with contextlib.suppress(ValueError):
            decoded = json.loads(raw)
            if isinstance(decoded, int) and not isinstance(decoded, bool) and decoded >= 0:
                return min(decoded, seq_now)
            if isinstance(decoded, list) and decoded and type(decoded[0]) is int:
                return max(0, min(decoded[0], seq_now))
    raise BadRequest("Malformed sequence supplied in 'since' parameter.")


def _page_json(page: ChangesPage, seq_interval: int, limit: int | None) -> dict[str, Any]:
    rows = _with_interval(page.rows, seq_interval, limit)
    return {"results": rows, "last_seq": page.last_seq, "pending": page.pending}


async def _longpoll(
    request: web.Request, state: StoreState, db: str, params: FeedParams
) -> web.StreamResponse:
    """Answer at once if there are changes, else wait for the first write (or the timeout)."""
    deadline = _deadline(params.timeout_s)
    response: web.StreamResponse | None = None
    try:
        while True:
            event = state.hub.event(db)
            page = await state.storage.read(read_changes, db, params.query)
            if page.rows or state.hub.closed or _expired(deadline) or _client_gone(request):
                break
            if response is None:
                response = web.StreamResponse(headers={"Content-Type": "application/json"})
                await response.prepare(request)
            if not await _wait(event, params.heartbeat_s, deadline) and params.heartbeat_s:
                await response.write(b"\n")
        if response is None:
            return json_response(_page_json(page, params.seq_interval, params.query.limit))
        await response.write(
            dumps(_page_json(page, params.seq_interval, params.query.limit)) + b"\n"
        )
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away: nothing more to send
    return response if response is not None else web.Response()


async def _continuous(
    request: web.Request, state: StoreState, db: str, params: FeedParams
) -> web.StreamResponse:
    """One JSON line (or SSE event) per change, forever or until limit/timeout."""
    sse = params.feed == "eventsource"
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream" if sse else "application/json",
            "Cache-Control": "no-cache",
        }
    )
    await response.prepare(request)
    query = params.query
    deadline = _deadline(params.timeout_s)
    pending: int | None = None
    sent = 0
    try:
        while not state.hub.closed:
            event = state.hub.event(db)
            page = await state.storage.read(read_changes, db, query)
            if page.rows or pending is None:
                # A later read that finds nothing says nothing new: a filtered feed's pending
                # stays what its last rows left (CouchDB's, counted from the feed's since).
                pending = page.pending
            for row in _with_interval(page.rows, params.seq_interval, params.query.limit, sent):
                await response.write(_sse(row) if sse else dumps(row) + b"\n")
            sent += len(page.rows)
            query = replace(query, since=page.last_seq)
            if query.descending:
                break  # read from the newest once: there is nothing to wait for after the oldest
            if query.limit is not None:
                if len(page.rows) >= query.limit:
                    break
                query = replace(query, limit=query.limit - len(page.rows))
            if page.rows:
                deadline = _deadline(params.timeout_s)
                continue
            if _expired(deadline) or _client_gone(request):
                break
            if not await _wait(event, params.heartbeat_s, deadline) and params.heartbeat_s:
                await response.write(b"event: heartbeat\ndata: \n\n" if sse else b"\n")
        if not sse:
            await response.write(dumps({"last_seq": query.since, "pending": pending or 0}) + b"\n")
        await response.write_eof()
    except NotFound:  # the database was deleted mid-feed: end the stream
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away: nothing more to send
    return response


def _client_gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


def _sse(row: dict[str, Any]) -> bytes:
    return b"data: " + dumps(row) + b"\nid: " + dumps(row["seq"]) + b"\n\n"


def _deadline(timeout_s: float | None) -> float | None:
    return None if timeout_s is None else time.monotonic() + timeout_s


def _expired(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


async def _wait(event: asyncio.Event, heartbeat_s: float | None, deadline: float | None) -> bool:
    """Wait for a write, a heartbeat tick or the deadline; True when a write woke us."""
    wait_s = heartbeat_s if heartbeat_s is not None else _IDLE_CHECK_S
    if deadline is not None:
        wait_s = max(0.0, min(wait_s, deadline - time.monotonic()))
    try:
        await asyncio.wait_for(event.wait(), wait_s)
    except TimeoutError:
        return False
    return True


async def db_updates(request: web.Request) -> web.StreamResponse:
    """``GET|POST /_db_updates`` as CouchDB has it: normal, longpoll, continuous, eventsource."""
    if request.method not in ("GET", "HEAD", "POST"):
        raise MethodNotAllowed(("GET", "HEAD", "POST"))
    state = request.app[STATE]
    q = request.query
    feed = q.get("feed", "normal")
    if feed not in ("normal", "longpoll", "continuous", "eventsource"):
        raise BadRequest("Supported `feed` types: normal, continuous, longpoll, eventsource")
    now = await state.storage.read(current_db_updates_seq)
    since = _since(q.get("since", 0), now)
    limit = integer(q, "limit")
    heartbeat_s, timeout_s = _timing(q)
    if feed == "normal":
        page = await state.storage.read(read_db_updates, since, limit)
        return json_response({"results": page.rows, "last_seq": str(page.last_seq)})
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream" if feed == "eventsource" else "application/json",
            "Cache-Control": "no-cache",
        }
    )
    await response.prepare(request)
    with contextlib.suppress(ConnectionResetError):  # the client may go away at any point
        await _db_updates_feed(request, response, feed, since, limit, heartbeat_s, timeout_s)
    return response


async def _db_updates_feed(
    request: web.Request,
    response: web.StreamResponse,
    feed: str,
    since: int,
    limit: int | None,
    heartbeat_s: float | None,
    timeout_s: float | None,
) -> None:
    """The live ``_db_updates`` feeds, on a prepared response."""
    state = request.app[STATE]
    sse = feed == "eventsource"
    deadline = _deadline(timeout_s)
    while True:
        event = state.hub.event(ALL_DBS)
        page = await state.storage.read(read_db_updates, since, limit)
        since = page.last_seq
        if feed == "longpoll" and (page.rows or state.hub.closed or _expired(deadline)):
            body = {"results": page.rows, "last_seq": str(page.last_seq)}
            await response.write(dumps(body) + b"\n")
            break
        for row in page.rows:
            await response.write(_global_changes_sse(row) if sse else dumps(row) + b"\n")
        if limit is not None and page.rows:
            limit -= len(page.rows)
            if limit <= 0:
                break
        if page.rows:
            deadline = _deadline(timeout_s)
            continue
        if state.hub.closed or _expired(deadline) or _client_gone(request):
            break
        if not await _wait(event, heartbeat_s, deadline) and heartbeat_s:
            await response.write(b"event: heartbeat\ndata: \n\n" if sse else b"\n")
    if feed == "continuous":
        await response.write(dumps({"last_seq": str(since)}) + b"\n")
    await response.write_eof()


def _global_changes_sse(row: dict[str, Any]) -> bytes:
    """CouchDB's eventsource ``_db_updates`` passes on the rows of its ``_global_changes``
    database: ``{"seq", "id": "type:db_name", "changes": [{"rev"}]}``, the id line quoted. The
    store has no such database; the revision is made of the seq (opaque, as CouchDB's is)."""
    seq = row["seq"]
    kind = f"{row['type']}:{row['db_name']}"
    rev = f"1-{hashlib.md5(f'{kind}:{seq}'.encode()).hexdigest()}"
    data = {"seq": seq, "id": kind, "changes": [{"rev": rev}]}
    return b"data: " + dumps(data) + b"\nid: " + dumps(seq) + b"\n\n"


def _timing(q: Mapping[str, str]) -> tuple[float | None, float | None]:
    """``heartbeat`` and ``timeout`` in seconds, as _changes reads them."""
    heartbeat = q.get("heartbeat")
    heartbeat_s: float | None = None
    if heartbeat is not None:
        if heartbeat == "true":
            heartbeat_s = 60.0
        elif heartbeat.isdigit() and int(heartbeat) > 0:
            heartbeat_s = int(heartbeat) / 1000
        else:
            raise BadRequest(
                "Invalid heartbeat value. Expecting a positive integer value (in milliseconds)."
            )
    timeout_ms = integer(q, "timeout")
    if timeout_ms is not None:
        return heartbeat_s, timeout_ms / 1000
    return heartbeat_s, None if heartbeat_s is not None else DEFAULT_TIMEOUT_MS / 1000
