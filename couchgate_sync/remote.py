"""The server's database for this app (``SERVER/db/APP`` through couchgate), over one session.

Errors come back as words a person can act on: :class:`Revoked` (the device was signed out:
stop, touch nothing), :class:`QuotaReached`, :class:`Unreachable` (retry later). Nothing here
logs; callers log what happened, never names or contents.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import ijson  # type: ignore[import-untyped]


class RemoteError(Exception):
    """The server refused something; ``message`` is meant for the person at the terminal."""


class Revoked(RemoteError):
    def __init__(self) -> None:
        super().__init__(
            "this device was signed out (revoked) on the server: nothing was changed in the "
            "folder; join again to sync"
        )


class QuotaReached(RemoteError):
    def __init__(self) -> None:
        super().__init__("the account's storage quota is reached: delete or shrink files")


class Unreachable(RemoteError):
    def __init__(self, why: str) -> None:
        super().__init__(f"the server is unreachable ({why})")


class SlowDown(Unreachable):
    """The server's rate limit: wait ``retry_after`` seconds (its ``Retry-After``)."""

    def __init__(self, retry_after: float) -> None:
        RemoteError.__init__(self, "the server asks this device to slow down")
        self.retry_after = retry_after


def _seconds(value: str | None) -> float:
    try:
        return max(1.0, float(value)) if value else 1.0
    except ValueError:
        return 1.0


def refusal(status: int, parsed: Any, retry_after: float = 1.0) -> RemoteError:
    """The one map from a refused answer (CouchDB's ``{"error", "reason"}`` body, parsed) to
    words: every call on the server (database, account APIs, sign-in) says a status alike.
    429 is CouchDB's ``too_many_requests``: wait ``retry_after`` seconds and try again."""
    if status == 401:
        return Revoked()
    error = parsed.get("error") if isinstance(parsed, dict) else None
    reason = parsed.get("reason") if isinstance(parsed, dict) else None
    if status == 413 or (status == 403 and "quota" in str(reason)):
        return QuotaReached()
    if status == 429:
        return SlowDown(retry_after)
    if status >= 500:
        return Unreachable(f"HTTP {status}")
    return RemoteError(f"the server refused a request: {error or status}: {reason or ''}")


@dataclass(frozen=True)
class Encoded:
    """A request body that is JSON already."""

    data: bytes


class _Counted:
    """A response body read through ijson, counting the bytes read since the last ``take``:
    what one parsed document took of the answer, without measuring the document again."""

    def __init__(self, content: aiohttp.StreamReader) -> None:
        self.content = content
        self.since = 0

    async def read(self, n: int = -1) -> bytes:
        data = await self.content.read(n)
        self.since += len(data)
        return data

    def take(self) -> int:
        taken, self.since = self.since, 0
        return taken


class Remote:
    """``_changes``, ``_revs_diff``, ``_bulk_get``, ``_bulk_docs`` and ``_local`` docs."""

    def __init__(self, session: aiohttp.ClientSession, server: str, app: str, token: str) -> None:
        self.session = session
        self.db_url = f"{server.rstrip('/')}/db/{quote(app, safe='')}"
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        params: dict[str, str] | None = None,
        wait_s: float = 60.0,
        allow: tuple[int, ...] = (),
    ) -> tuple[int, Any]:
        url = self.db_url + path
        if isinstance(body, Encoded):
            data: bytes | None = body.data
        else:
            data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self.session.request(
                method,
                url,
                data=data,
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=wait_s),
            ) as r:
                raw = await r.read()
                status = r.status
                retry_after = _seconds(r.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            raise Unreachable(type(exc).__name__) from None
        parsed: Any = json.loads(raw) if raw else None
        if status in allow or status < 300:
            return status, parsed
        raise refusal(status, parsed, retry_after)

    async def info(self) -> dict[str, Any]:
        _, body = await self.request("GET", "")
        return body if isinstance(body, dict) else {}

    async def ensure_db(self) -> None:
        """Create the app's database on first use (412 when it exists already)."""
        await self.request("PUT", "", allow=(412,))

    async def changes(
        self, since: str, *, limit: int, feed: str = "normal", timeout_ms: int = 0
    ) -> dict[str, Any]:
        params = {"since": since, "style": "all_docs", "limit": str(limit)}
        wait = 60.0
        if feed == "longpoll":
            params.update(feed="longpoll", timeout=str(timeout_ms), heartbeat="10000")
            wait = timeout_ms / 1000 + 30
        _, body = await self.request("GET", "/_changes", params=params, wait_s=wait)
        return body if isinstance(body, dict) else {"results": [], "last_seq": since}

    async def usage(self, server: str) -> dict[str, Any] | None:
        """This app's documents and bytes on the server (``/account/api/apps``)."""
        try:
            async with self.session.get(
                server.rstrip("/") + "/account/api/apps", headers=self.headers
            ) as r:
                if r.status == 401:
                    raise Revoked()
                rows = await r.json(content_type=None) if r.status == 200 else []
        except aiohttp.ClientConnectionError as exc:
            raise Unreachable(type(exc).__name__) from None
        app = self.db_url.rsplit("/", 1)[1]
        return next((row for row in rows if isinstance(row, dict) and row.get("app") == app), None)

    async def revision(self, doc_id: str, rev: str) -> dict[str, Any] | None:
        """Revision ``rev`` of ``doc_id`` with its attachments inline, also when it is no longer
        a leaf; None when the server does not keep its body (CouchDB's ``missing``: compacted
        away, or known only by id)."""
        status, body = await self.request(
            "GET",
            "/" + quote(doc_id, safe=""),
            params={"rev": rev, "attachments": "true"},
            allow=(404,),
        )
        return body if status == 200 and isinstance(body, dict) else None

    async def revs_diff(self, wanted: dict[str, list[str]]) -> dict[str, Any]:
        _, body = await self.request("POST", "/_revs_diff", body=wanted)
        return body if isinstance(body, dict) else {}

    async def bulk_get(
        self, requests: list[dict[str, str]]
    ) -> AsyncGenerator[tuple[dict[str, Any], int], None]:
        """``_bulk_get?revs=true&attachments=true&latest=true``, parsed as it arrives: each
        document found, with how many bytes of the answer it took. The answer to a hundred ids
        can be hundreds of MB (attachments inline); read this way only one document of it is in
        memory at a time, plus whatever the caller keeps."""
        headers = {**self.headers, "Content-Type": "application/json"}
        try:
            async with self.session.post(
                self.db_url + "/_bulk_get",
                data=json.dumps({"docs": requests}, separators=(",", ":")).encode(),
                params={"revs": "true", "attachments": "true", "latest": "true"},
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=60, sock_read=300),
            ) as r:
                if r.status >= 300:
                    raw = await r.read()
                    raise refusal(
                        r.status,
                        json.loads(raw) if raw else None,
                        _seconds(r.headers.get("Retry-After")),
                    )
                body = _Counted(r.content)
                items = ijson.items_async(body, "results.item.docs.item", use_float=True)
                async for item in items:
                    if isinstance(item, dict) and isinstance(item.get("ok"), dict):
                        yield item["ok"], body.take()
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise Unreachable(type(exc).__name__) from None
        except ijson.JSONError:
            raise Unreachable("a malformed answer") from None

    async def bulk_docs_replicated(self, docs: list[bytes]) -> list[dict[str, Any]]:
        """Write replicated revisions (``new_edits=false``), each already JSON-encoded (the
        push measures a document by its encoding, so it is encoded once)."""
        body = Encoded(b'{"docs":[' + b",".join(docs) + b'],"new_edits":false}')
        _, answer = await self.request("POST", "/_bulk_docs", body=body, wait_s=300.0)
        return (
            [item for item in answer if isinstance(item, dict) and "error" in item]
            if isinstance(answer, list)
            else []
        )

    async def get_local(self, doc_id: str) -> dict[str, Any] | None:
        status, body = await self.request("GET", "/" + doc_id, allow=(404,))
        return body if status == 200 and isinstance(body, dict) else None

    async def put_local(self, doc: dict[str, Any]) -> str | None:
        """Write a ``_local`` document; its new revision, None when ``_rev`` is stale (another
        run of ours moved it: ``replicate`` re-reads it and writes once more)."""
        status, body = await self.request("PUT", "/" + str(doc["_id"]), body=doc, allow=(409,))
        if status == 409:
            return None
        return str(body.get("rev")) if isinstance(body, dict) else ""
