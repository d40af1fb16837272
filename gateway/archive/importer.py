"""Loading an archive into a person's apps on this server, one batch at a time.

Revisions go in with ``new_edits=false``: stored as they are, history and conflicts included,
so devices that replicated with the old server find the same revisions here. Before each batch
``_revs_diff`` says which revisions are already here, so a retry after a cut-off loads only the
rest, and the quota is checked against what would really be added.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from gateway.archive.format import check_manifest, parse_line, split_lines
from gateway.auth.records import IdentityStore
from gateway.config import APP_NAME
from gateway.errors import BadRequest, CouchError, Forbidden, UpstreamUnavailable
from gateway.limits.quotas import db_usage
from gateway.limits.rates import quota_for
from gateway.replication import policy
from gateway.replication.paths import app_enabled
from gateway.upstream.backend import ADMIN_CALL_TIMEOUT, Backend
from gateway.upstream.member_auth import admin_headers

BATCH_DOCS = 200
BATCH_BYTES = 4 * 1024 * 1024


@dataclass
class ImportReport:
    loaded: dict[str, int] = field(default_factory=dict)
    """Revisions written, per app."""
    present: dict[str, int] = field(default_factory=dict)
    """Revisions that were here already (a retry, or an import done twice), per app."""

    def public(self) -> dict[str, object]:
        return {"ok": True, "loaded": self.loaded, "already_present": self.present}


@dataclass
class _Batch:
    app: str = ""
    docs: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0


class Importer:
    def __init__(self, backend: Backend, identities: IdentityStore, uid: str) -> None:
        self._backend = backend
        self._identities = identities
        self._uid = uid
        self._ready: set[str] = set()
        self.report = ImportReport()

    async def _call(self, method: str, url: Any, body: object) -> Any:
        headers = {**admin_headers(self._backend.settings), "Accept": "application/json"}
        try:
            async with self._backend.http.request(
                method,
                url,
                headers={**headers, "Content-Type": "application/json"},
                data=json.dumps(body).encode(),
                timeout=ADMIN_CALL_TIMEOUT,
            ) as resp:
                if resp.status >= 300:
                    raise UpstreamUnavailable(f"the upstream answered {resp.status} to an import")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise UpstreamUnavailable() from None

    async def _provision(self, app: str) -> None:
        if app in self._ready:
            return
        settings = self._backend.settings
        if not APP_NAME.match(app) or not app_enabled(settings.apps, app):
            raise Forbidden(f"the app {app!r} is not available on this server")
        user = await self._identities.user(self._uid)
        if user is None:
            raise BadRequest("no such account on this server")
        most = settings.apps_per_user
        if most and app not in user.apps and len(user.apps) >= most:
            raise Forbidden(f"app limit reached: an account may have {most} apps")
        await self._backend.create_user_db(self._uid, app)
        await self._identities.add_app(self._uid, app)
        self._ready.add(app)

    async def _flush(self, batch: _Batch) -> None:
        if not batch.docs:
            return
        app = batch.app
        db = self._backend.db_url(self._uid, app)
        asked: dict[str, list[str]] = {}
        for doc in batch.docs:
            asked.setdefault(doc["_id"], []).append(doc["_rev"])
        diff = await self._call("POST", db / "_revs_diff", asked)
        missing = {
            (doc_id, rev)
            for doc_id, entry in (diff or {}).items()
            for rev in entry.get("missing", [])
        }
        todo = [d for d in batch.docs if (d["_id"], d["_rev"]) in missing]
        self.report.present[app] = self.report.present.get(app, 0) + len(batch.docs) - len(todo)
        if todo:
            await self._check_quota(app, todo)
            errors = await self._call("POST", db / "_bulk_docs", {"docs": todo, "new_edits": False})
            failed = [e for e in errors or [] if isinstance(e, dict) and "error" in e]
            if failed:
                raise UpstreamUnavailable(f"{len(failed)} revision(s) of {app} were not stored")
            self.report.loaded[app] = self.report.loaded.get(app, 0) + len(todo)
        batch.docs, batch.size = [], 0

    async def _check_quota(self, app: str, docs: list[dict[str, Any]]) -> None:
        quota = quota_for(self._backend.settings, app)
        if not quota.docs and not quota.bytes:
            return
        usage = await db_usage(self._backend, self._uid, app, as_admin=True)
        docs_now, bytes_now = (usage.docs, usage.bytes) if usage else (0, 0)
        new_ids = len({d["_id"] for d in docs})
        size = sum(len(json.dumps(d)) for d in docs)
        if quota.docs and docs_now + new_ids > quota.docs:
            raise Forbidden(
                f"importing {app} would exceed your quota of {quota.docs} documents "
                f"({docs_now} stored); nothing past that point was loaded"
            )
        if quota.bytes and bytes_now + size > quota.bytes:
            raise Forbidden(
                f"importing {app} would exceed your storage quota of {quota.bytes} bytes "
                f"({bytes_now} used); nothing past that point was loaded"
            )

    async def _add(self, batch: _Batch, app: str, doc: Any, raw_size: int) -> None:
        if not isinstance(doc, dict) or not isinstance(doc.get("_id"), str):
            raise BadRequest("a document line of the export has no _id")
        if not isinstance(doc.get("_rev"), str) or doc["_id"].startswith("_local/"):
            raise BadRequest("a document line of the export has no _rev")
        settings = self._backend.settings
        sealed_only = not app_enabled(settings.plaintext_apps, app)
        try:
            policy.check_doc(doc["_id"], doc, encryption_required=sealed_only)
        except CouchError as refusal:
            reason = f"the export holds a document that {app} refuses: {refusal.reason}"
            raise Forbidden(reason) from None
        if batch.app != app or len(batch.docs) >= BATCH_DOCS or batch.size >= BATCH_BYTES:
            await self._flush(batch)
            batch.app = app
        await self._provision(app)
        batch.docs.append(doc)
        batch.size += raw_size

    async def load(self, chunks: AsyncIterator[bytes], max_line: int) -> ImportReport:
        """Read the archive to its end line; raises on anything that is not a whole export."""
        batch = _Batch()
        number = 0
        ended = False
        async for raw in split_lines(chunks, max_line):
            number += 1
            record = parse_line(raw, number)
            if number == 1:
                check_manifest(record)
                continue
            if ended:
                raise BadRequest("the export goes on after its end line")
            kind = record.get("type")
            if kind == "doc":
                await self._add(batch, str(record.get("app", "")), record.get("doc"), len(raw))
            elif kind == "end":
                ended = True
            else:
                raise BadRequest(f"line {number} of the export has an unknown type")
        await self._flush(batch)
        if number == 0:
            raise BadRequest("the export is empty")
        if not ended:
            raise BadRequest(
                "the export ends early (no end line): what it held was loaded; "
                "import the whole file again to load the rest"
            )
        return self.report
