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
from gateway.auth.records.base import iso
from gateway.auth.records.users import User
from gateway.errors import UpstreamUnavailable
from gateway.limits.quotas import db_usage
from gateway.upstream.backend import ADMIN_CALL_TIMEOUT, Backend
from gateway.upstream.member_auth import admin_headers

log = logging.getLogger(__name__)

BATCH = 200
ATTACHMENT_BATCH_BYTES = 8 * 1024 * 1024


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


async def _bulk_get(
    backend: Backend, db: Any, wanted: list[dict[str, str]], *, attachments: bool
) -> list[dict[str, Any]]:
    got = await _json(
        backend,
        "POST",
        db / "_bulk_get",
        params={"revs": "true", "attachments": "true" if attachments else "false"},
        json={"docs": wanted},
    )
    return [
        entry["ok"]
        for result in (got or {}).get("results", [])
        for entry in result.get("docs", [])
        if "ok" in entry
    ]


def _attachment_bytes(doc: dict[str, Any]) -> int:
    atts = doc.get("_attachments")
    if not isinstance(atts, dict):
        return 0
    return sum(int(a.get("length", 0) or 0) for a in atts.values() if isinstance(a, dict))


def _by_size(docs: list[dict[str, Any]]) -> list[list[dict[str, str]]]:
    """Revisions with attachments in groups of at most ATTACHMENT_BATCH_BYTES (one alone when
    it is bigger), so one request never holds more than that in attachment data."""
    groups: list[list[dict[str, str]]] = []
    size = ATTACHMENT_BATCH_BYTES
    for doc in docs:
        length = _attachment_bytes(doc)
        if size + length > ATTACHMENT_BATCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append({"id": doc["_id"], "rev": doc["_rev"]})
        size += length
    return groups


async def app_docs(backend: Backend, uid: str, app: str) -> AsyncIterator[dict[str, Any]]:
    """Every leaf revision of one app's database, with ``_revisions`` and inline attachments.

    A batch is read without attachment data first; the revisions that have attachments are then
    read again with it, a few megabytes at a time, so memory stays bounded by
    ``ATTACHMENT_BATCH_BYTES`` whatever the attachments weigh.
    """
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
            with_files = []
            for doc in await _bulk_get(backend, db, wanted, attachments=False):
                if doc.get("_attachments"):
                    with_files.append(doc)
                else:
                    yield doc
            for group in _by_size(with_files):
                for doc in await _bulk_get(backend, db, group, attachments=True):
                    yield doc
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
