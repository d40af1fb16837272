"""Reading a person's apps out of the upstream, one batch at a time.

Every leaf revision (``style=all_docs``: the winner, each conflict, deleted leaves too) comes
with its revision history and its attachments inline, as ``open_revs=all&revs=true`` gives them,
batched through ``_bulk_get``. ``_local`` documents are never in the changes feed, so they stay
behind: they are replication checkpoints of the old server. Nothing is opened or re-sealed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from gateway.archive.format import doc_line, end_line, manifest_line
from gateway.auth.records import User, iso
from gateway.backend import ADMIN_CALL_TIMEOUT, Backend
from gateway.errors import UpstreamUnavailable
from gateway.quotas import db_usage
from gateway.upstream_auth import admin_headers

log = logging.getLogger(__name__)

BATCH = 200


async def _json(backend: Backend, method: str, url: Any, **kwargs: Any) -> Any:
    headers = {**admin_headers(backend.settings), "Accept": "application/json"}
    try:
        async with backend.http.request(
            method, url, headers=headers, timeout=ADMIN_CALL_TIMEOUT, **kwargs
        ) as resp:
            if resp.status == 404:
                return None
            if resp.status >= 300:
                raise UpstreamUnavailable(f"the upstream answered {resp.status} during export")
            return await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        raise UpstreamUnavailable() from None


async def app_docs(backend: Backend, uid: str, app: str) -> AsyncIterator[dict[str, Any]]:
    """Every leaf revision of one app's database, with ``_revisions`` and inline attachments."""
    db = backend.db_url(uid, app)
    since: object = 0
    while True:
        page = await _json(
            backend,
            "GET",
            db / "_changes",
            params={"style": "all_docs", "limit": str(BATCH), "since": str(since)},
        )
        if page is None:
            return
        rows = [r for r in page.get("results", []) if not str(r.get("id", "")).startswith("_")]
        wanted = [{"id": r["id"], "rev": c["rev"]} for r in rows for c in r.get("changes", [])]
        if wanted:
            got = await _json(
                backend,
                "POST",
                db / "_bulk_get",
                params={"revs": "true", "attachments": "true"},
                json={"docs": wanted},
            )
            for result in (got or {}).get("results", []):
                for entry in result.get("docs", []):
                    if "ok" in entry:
                        yield entry["ok"]
        if not page.get("results") or page.get("last_seq") == since:
            return
        since = page.get("last_seq")


async def export_lines(backend: Backend, user: User) -> AsyncIterator[bytes]:
    """The whole archive of one person, line by line."""
    apps: list[dict[str, object]] = []
    for app in user.apps:
        usage = await db_usage(backend, user.uid, app, as_admin=True)
        apps.append({"app": app, "doc_count": usage.docs if usage else 0})
    yield manifest_line(user.uid, iso(user.created), apps)
    counts: dict[str, int] = {}
    for app in user.apps:
        counts[app] = 0
        async for doc in app_docs(backend, user.uid, app):
            counts[app] += 1
            yield doc_line(app, doc)
    yield end_line(counts)
