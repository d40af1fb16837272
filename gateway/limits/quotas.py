"""Quotas: what one user may keep in one app's database.

Checked against the upstream's own database info (plus the gateway's tally of ``_local``
documents, which the upstream counts nowhere) before a write is forwarded: a write past the
quota is refused whole (403 ``forbidden``, which stops a PouchDB replication instead of retrying
it) and nothing stored is touched. The document quota counts what a request adds: in a
``_bulk_docs`` the documents it would add past the quota are refused one by one, as CouchDB
answers a refused document there (``{"id", "error": "forbidden", "reason"}``), and the rest are
written, so PouchDB and couchgate-sync report each refused document. ``DELETE`` of a document
or of the remote copy is never refused, so a user can always get back under the quota. One
extra upstream ``GET`` per write (and an ``_all_docs`` per ``_bulk_docs`` with a document quota),
and only when the app has a quota.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from gateway import keys
from gateway.auth.records.devices import Device
from gateway.auth.records.local_docs import local_key
from gateway.config import Settings
from gateway.config_values import ConfigError
from gateway.errors import CouchError, Forbidden, LengthRequired, UpstreamUnavailable
from gateway.limits.rates import quota_for
from gateway.replication.paths import Kind, Target
from gateway.replication.policy import LOCAL_PREFIX, doc_id_of
from gateway.upstream.backend import ADMIN_CALL_TIMEOUT, Backend, member_name
from gateway.upstream.member_auth import admin_headers, member_headers


@dataclass(frozen=True, slots=True)
class Usage:
    docs: int
    bytes: int


def usage_of(info: object) -> Usage:
    """Documents and bytes from a database info answer: CouchDB's ``sizes.external`` (the data
    as stored, uncompressed), else what older servers report."""
    if not isinstance(info, dict):
        return Usage(0, 0)
    sizes = info.get("sizes") if isinstance(info.get("sizes"), dict) else {}
    assert isinstance(sizes, dict)
    size = next(
        (
            v
            for v in (sizes.get("external"), sizes.get("active"), info.get("data_size"))
            if isinstance(v, int)
        ),
        0,
    )
    docs = info.get("doc_count")
    return Usage(docs if isinstance(docs, int) else 0, size)


BYTE_QUOTA_UNCOUNTED = (
    "quota_bytes cannot be held on pouchdb-server: its database info reports no sizes. "
    "Use CouchDB or the embedded store, or set no byte quota (quota_bytes and app_limits)"
)


def byte_quota_set(settings: Settings) -> bool:
    """Whether any app has a byte quota (the global one, or one of ``app_limits``)."""
    return bool(settings.quota_bytes) or any(
        limits.quota_bytes for limits in settings.app_limits.values()
    )


async def check_byte_quota_counted(backend: Backend) -> None:
    """Refuse to serve with a byte quota the upstream gives no sizes for (pouchdb-server): a
    quota that is never held must not look configured. Raises :class:`ConfigError`."""
    if not byte_quota_set(backend.settings):
        return
    vendor = (await backend.server_info()).get("vendor")
    if isinstance(vendor, dict) and vendor.get("name") == "PouchDB authors":
        raise ConfigError("quota_bytes", BYTE_QUOTA_UNCOUNTED)


async def db_usage(backend: Backend, uid: str, app: str, *, as_admin: bool = False) -> Usage | None:
    """What one user keeps in one app's database; None when there is no such database."""
    settings = backend.settings
    headers = (
        admin_headers(settings)
        if as_admin
        else member_headers(settings, member_name(uid), int(time.time()))
    )
    try:
        async with backend.http.get(
            backend.db_url(uid, app),
            headers={**headers, "Accept": "application/json"},
            timeout=ADMIN_CALL_TIMEOUT,
        ) as resp:
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise UpstreamUnavailable("the database did not say how much it holds")
            return usage_of(await resp.json(content_type=None))
    except (aiohttp.ClientError, TimeoutError, ValueError):
        raise UpstreamUnavailable() from None


def _is_write(method: str, target: Target) -> bool:
    if target.kind is Kind.ENDPOINT:
        return target.endpoint == "_bulk_docs" and method == "POST"
    if target.kind is Kind.DB:
        return method == "POST"
    return method == "PUT" and target.kind in (Kind.DOC, Kind.ATTACHMENT, Kind.LOCAL)


async def check_quota(request: web.Request, device: Device, target: Target) -> None:
    """Refuse a write that would take the user's database for this app past its quota."""
    if not _is_write(request.method, target):
        return
    quota = quota_for(request.app[keys.SETTINGS], target.app)
    if not quota.bytes and not quota.docs:
        return
    counted = await _counted(request.app, device.uid, target.app)
    if counted is None:
        return  # no database: the write itself answers 404
    usage, local = counted
    # A checkpoint moving on counts only its growth.
    replaced = local.get(local_key(target.doc_id), 0) if target.kind is Kind.LOCAL else 0
    usage = Usage(usage.docs, usage.bytes - replaced)
    bulk = target.kind is Kind.ENDPOINT  # its documents are counted one by one: bulk_refusals
    if quota.docs and usage.docs >= quota.docs and target.kind is not Kind.LOCAL and not bulk:
        raise Forbidden(
            f"document quota reached: {usage.docs} of {quota.docs} documents; delete some first"
        )
    incoming = request.content_length
    if quota.bytes and incoming is None:
        # Counting a chunked body as it streams would only find out once it is upstream.
        raise LengthRequired("a write to an app with a storage quota needs a Content-Length")
    if quota.bytes and usage.bytes + (incoming or 0) > quota.bytes:
        raise Forbidden(
            f"storage quota reached: {usage.bytes} of {quota.bytes} bytes used, "
            f"this write needs {incoming} more"
        )


async def bulk_refusals(
    request: web.Request,
    device: Device,
    target: Target,
    docs: list[Any],
    refused: Mapping[int, CouchError],
) -> dict[int, CouchError]:
    """The documents of a ``_bulk_docs`` past the document quota, by position: those that would
    add a document (an id with no live document upstream, or none given), in order, once the
    quota is full. Updates, deletions and ``_local`` documents add none and always pass;
    ``refused`` are the positions refused already for other reasons."""
    quota = quota_for(request.app[keys.SETTINGS], target.app)
    if not quota.docs:
        return {}
    counted = await _counted(request.app, device.uid, target.app)
    if counted is None:
        return {}
    adding = {
        i: doc_id_of(doc)
        for i, doc in enumerate(docs)
        if i not in refused
        and isinstance(doc, dict)
        and not doc_id_of(doc).startswith(LOCAL_PREFIX)
        and doc.get("_deleted") is not True
    }
    live = await _live_ids(request.app[keys.BACKEND], device.uid, target.app, adding.values())
    room = quota.docs - counted[0].docs
    past: dict[int, CouchError] = {}
    counted_ids: set[str] = set()
    for i, doc_id in adding.items():
        if doc_id and (doc_id in live or doc_id in counted_ids):
            continue
        if room > 0:
            room -= 1
            counted_ids.add(doc_id)
            continue
        past[i] = Forbidden(
            f"document quota reached: {quota.docs} documents; this one would be one more"
        )
    return past


async def _live_ids(backend: Backend, uid: str, app: str, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` name a document that exists and is not deleted."""
    keys_asked = sorted({doc_id for doc_id in ids if doc_id})
    if not keys_asked:
        return set()
    headers = member_headers(backend.settings, member_name(uid), int(time.time()))
    try:
        async with backend.http.post(
            backend.db_url(uid, app) / "_all_docs",
            headers={**headers, "Accept": "application/json"},
            json={"keys": keys_asked},
            timeout=ADMIN_CALL_TIMEOUT,
        ) as resp:
            if resp.status != 200:
                raise UpstreamUnavailable("the database did not say which documents it holds")
            answer = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        raise UpstreamUnavailable() from None
    rows = answer.get("rows") if isinstance(answer, dict) else None
    return {
        row["id"]
        for row in rows or []
        if isinstance(row, dict)
        and isinstance(row.get("id"), str)
        and isinstance(row.get("value"), dict)
        and not row["value"].get("deleted")
    }


async def _counted(
    app: web.Application, uid: str, name: str
) -> tuple[Usage, dict[str, int]] | None:
    """What a quota is checked against, and the ``_local`` documents' sizes within it; None
    when there is no database."""
    usage = await db_usage(app[keys.BACKEND], uid, name)
    if usage is None:
        return None
    # _local documents are in neither figure upstream: the gateway's own tally adds their bytes
    # (their number has a cap of its own, LOCAL_DOCS_PER_APP), so a replication can always
    # record how far it got, also at the document quota.
    local = await app[keys.IDENTITIES].local_docs(uid, name)
    return Usage(usage.docs, usage.bytes + sum(local.values())), local


async def quota_report(app: web.Application, uid: str, name: str) -> dict[str, int | None] | None:
    """An app's quota as the account API shows it: each limit (None: none) and what counts
    against it, measured as the quota check measures it; None when the app has no quota."""
    quota = quota_for(app[keys.SETTINGS], name)
    if not quota.bytes and not quota.docs:
        return None
    try:
        counted = await _counted(app, uid, name)
    except UpstreamUnavailable:
        counted = None  # the listing still shows the limits
    used = counted[0] if counted is not None else None
    return {
        "docs": quota.docs or None,
        "bytes": quota.bytes or None,
        "docs_used": used.docs if used else None,
        "bytes_used": used.bytes if used else None,
    }
