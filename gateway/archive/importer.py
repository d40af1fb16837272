"""Loading an archive into a person's apps on this server, one batch at a time.

Revisions go in with ``new_edits=false``: stored as they are, history and conflicts included,
so devices that replicated with the old server find the same revisions here. Before each batch
``_revs_diff`` says which revisions are already here, so a retry after a cut-off loads only the
rest, and the quota is checked against what would really be added.

An archive is loaded as far as it goes: a line that cannot be loaded (not JSON, refused by the
policy, by the quota or by the database) stops the import there, after every line before it was
written, and the answer names that line. A batch the database refuses whole is written again one
revision at a time to find the line (only then, so the common path stays one call per batch).
What the database refuses is the client's to fix, so it is retold as the 4xx it is, never as a
retryable 503; an app made for a batch that never loaded is removed again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from gateway.accounts.lifecycle import provision_app
from gateway.archive.format import check_manifest, parse_line, split_lines
from gateway.auth.records import IdentityStore
from gateway.config import APP_NAME
from gateway.errors import BadRequest, CouchError, Forbidden, TooLarge, UpstreamUnavailable
from gateway.limits.quotas import db_usage
from gateway.limits.rates import quota_for
from gateway.replication import policy
from gateway.replication.paths import app_enabled
from gateway.upstream.backend import ADMIN_CALL_TIMEOUT, Backend
from gateway.upstream.member_auth import admin_headers

log = logging.getLogger(__name__)

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
    lines: list[int] = field(default_factory=list)
    """The archive's line number of each document."""
    size: int = 0


_RETOLD: dict[int, type[CouchError]] = {403: Forbidden, 413: TooLarge}
"""How a refusal of the upstream's is told to the importer: as itself where the gateway has the
same error, else as 400 (an id starting with ``_``, a bad ``_rev``: the archive's fault)."""


async def _refusal(resp: aiohttp.ClientResponse) -> CouchError:
    try:
        answer = await resp.json(content_type=None)
    except (aiohttp.ClientError, ValueError):
        answer = None
    said = ""
    if isinstance(answer, dict):
        said = ": ".join(str(answer[k])[:200] for k in ("error", "reason") if k in answer)
    return _RETOLD.get(resp.status, BadRequest)(f"the database refused it ({said or resp.status})")


def _stopped_at(refusal: CouchError, line: int) -> CouchError:
    """The refusal, saying where the import stopped (every line before it was loaded)."""
    refusal.reason = (
        f"line {line} of the export: {refusal.reason}; the import stopped there, every line "
        "before it was loaded (import the corrected file again to load the rest)"
    )
    return refusal


class Importer:
    def __init__(self, backend: Backend, identities: IdentityStore, uid: str) -> None:
        self._backend = backend
        self._identities = identities
        self._uid = uid
        self._ready: set[str] = set()
        self._made: set[str] = set()
        """Apps this import added to the account (removed again if nothing loads into them)."""
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
                if 400 <= resp.status < 500:
                    raise await _refusal(resp)
                if resp.status >= 300:
                    raise UpstreamUnavailable(f"the upstream answered {resp.status} to an import")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise UpstreamUnavailable() from None

    def _check_app(self, app: str) -> None:
        settings = self._backend.settings
        if not APP_NAME.match(app) or not app_enabled(settings.apps, app):
            raise Forbidden(f"the app {app!r} is not available on this server")

    async def _provision(self, app: str) -> None:
        if app in self._ready:
            return
        most = self._backend.settings.apps_per_user
        added, _ = await provision_app(self._identities, self._backend, self._uid, app, most)
        if added:
            self._made.add(app)
        self._ready.add(app)

    async def _flush(self, batch: _Batch) -> None:
        """Write the batch; on a refusal, every revision before the refused one is written and
        the refusal names its line."""
        docs, lines = batch.docs, batch.lines
        batch.docs, batch.lines, batch.size = [], [], 0
        if not docs:
            return
        try:
            await self._write(batch.app, docs)
        except UpstreamUnavailable as outage:
            raise _stopped_at(outage, lines[0]) from None
        except CouchError as refusal:
            if len(docs) == 1:
                raise _stopped_at(refusal, lines[0]) from None
            for doc, line in zip(docs, lines, strict=True):
                try:
                    await self._write(batch.app, [doc])
                except CouchError as single:
                    raise _stopped_at(single, line) from None
            raise _stopped_at(refusal, lines[0]) from None  # refused together, not one by one

    async def _write(self, app: str, docs: list[dict[str, Any]]) -> None:
        await self._provision(app)
        db = self._backend.db_url(self._uid, app)
        asked: dict[str, list[str]] = {}
        for doc in docs:
            asked.setdefault(doc["_id"], []).append(doc["_rev"])
        diff = await self._call("POST", db / "_revs_diff", asked)
        missing = {
            (doc_id, rev)
            for doc_id, entry in (diff or {}).items()
            for rev in entry.get("missing", [])
        }
        todo = [d for d in docs if (d["_id"], d["_rev"]) in missing]
        self.report.present[app] = self.report.present.get(app, 0) + len(docs) - len(todo)
        if not todo:
            return
        await self._check_quota(app, todo)
        answers = await self._call("POST", db / "_bulk_docs", {"docs": todo, "new_edits": False})
        failed = [a for a in answers or [] if isinstance(a, dict) and "error" in a]
        stored = len(todo) - len(failed)
        if stored:
            self.report.loaded[app] = self.report.loaded.get(app, 0) + stored
        if failed:
            said = ": ".join(str(failed[0].get(k, ""))[:200] for k in ("error", "reason"))
            raise _RETOLD.get(403 if failed[0].get("error") == "forbidden" else 400, BadRequest)(
                f"the database refused it ({said})"
            )

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

    def _doc(self, app: str, doc: Any) -> dict[str, Any]:
        """A document line's document, if this server takes it into ``app``."""
        if not isinstance(doc, dict) or not isinstance(doc.get("_id"), str):
            raise BadRequest("a document line of the export has no _id")
        if not isinstance(doc.get("_rev"), str) or doc["_id"].startswith("_local/"):
            raise BadRequest("a document line of the export has no _rev")
        self._check_app(app)
        sealed_only = not app_enabled(self._backend.settings.plaintext_apps, app)
        try:
            policy.check_doc(doc["_id"], doc, encryption_required=sealed_only)
        except CouchError as refusal:  # told as itself: 403 for the policy, 400 for a shape
            refusal.reason = f"the export holds a document that {app} refuses: {refusal.reason}"
            raise
        return doc

    def _record(self, raw: bytes, ended: bool) -> tuple[str, dict[str, Any]] | None:
        """One line read: the app and document of a ``doc`` line, None for the end line."""
        record = parse_line(raw)
        if ended:
            raise BadRequest("the export goes on after its end line")
        kind = record.get("type")
        if kind == "doc":
            app = str(record.get("app", ""))
            return app, self._doc(app, record.get("doc"))
        if kind == "end":
            return None
        raise BadRequest("this line has an unknown type")

    async def load(self, chunks: AsyncIterator[bytes], max_line: int) -> ImportReport:
        """Read the archive to its end line; raises on anything that is not a whole export,
        after loading every line before the one that stopped it."""
        try:
            return await self._load(chunks, max_line)
        except BaseException:
            try:
                await asyncio.shield(self._remove_unloaded())
            except (CouchError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("an import's unused app was not removed: %s", type(exc).__name__)
            raise

    async def _load(self, chunks: AsyncIterator[bytes], max_line: int) -> ImportReport:
        batch = _Batch()
        number = 0
        ended = False
        lines = split_lines(chunks, max_line)
        while True:
            try:
                raw = await anext(lines)
            except StopAsyncIteration:
                break
            except CouchError as refusal:  # a line too long, a body that breaks off or past its cap
                await self._flush(batch)
                raise _stopped_at(refusal, number + 1) from None
            number += 1
            try:
                if number == 1:
                    check_manifest(parse_line(raw))
                    continue
                read = self._record(raw, ended)
            except CouchError as refusal:
                await self._flush(batch)
                raise _stopped_at(refusal, number) from None
            if read is None:
                ended = True
                continue
            app, doc = read
            if batch.app != app or len(batch.docs) >= BATCH_DOCS or batch.size >= BATCH_BYTES:
                await self._flush(batch)
                batch.app = app
            batch.docs.append(doc)
            batch.lines.append(number)
            batch.size += len(raw)
        await self._flush(batch)
        if number == 0:
            raise BadRequest("the export is empty")
        if not ended:
            raise BadRequest(
                "the export ends early (no end line): what it held was loaded; "
                "import the whole file again to load the rest"
            )
        return self.report

    async def _remove_unloaded(self) -> None:
        """Apps this import made and loaded nothing into go again: an import that failed
        leaves no empty app counting against ``apps_per_user``."""
        for app in sorted(self._made):
            if self.report.loaded.get(app):
                continue
            async with self._identities.app_changes.hold(f"{self._uid}/{app}"):
                usage = await db_usage(self._backend, self._uid, app, as_admin=True)
                if usage is None or usage.docs == 0:
                    await self._backend.delete_user_db(self._uid, app)
                    await self._identities.remove_app(self._uid, app)
