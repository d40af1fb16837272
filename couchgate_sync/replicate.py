"""The CouchDB replication protocol between the device's store and the server, both ways.

Each direction is what CouchDB's replicator and PouchDB do: read ``_changes`` (``style=all_docs``)
from the source since the checkpoint, ask the target's ``_revs_diff`` which leaves it lacks, fetch
those with their ancestry (``_bulk_get?revs=true&attachments=true``), write them with
``_bulk_docs`` and ``new_edits=false`` (so revision ids and trees are kept, never re-made), then
record the source seq in a ``_local`` checkpoint on *both* sides. A replication resumes from the
checkpoint only when both sides hold the same one (the same session), else from the start:
re-sending known revisions is harmless, skipping unknown ones is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from .localdb import LocalDb
from .remote import QuotaReached, Remote, RemoteError

BATCH = 200
# A _bulk_docs body stays under this many bytes (couchgate reads at most 64 MiB of one request
# by default); documents are fetched a few at a time, so a batch of large files is never held
# in memory whole.
MAX_BODY_BYTES = 8 * 1024 * 1024
FETCH_GROUP = 20
# Pulls: ids per _bulk_get, and the documents held before they are written to the local store
# (the answer is parsed as it arrives, so a batch of large files is never held whole either).
PULL_GROUP = 100
PULL_BATCH_BYTES = 8 * 1024 * 1024
# Checkpoints are written at most this often while a replication goes, and at its end (CouchDB's
# replicator: every 5 s), not after every batch: two requests per batch were a tenth of a first
# sync. A crash redoes at most this much, which revs_diff makes cheap.
CHECKPOINT_EVERY_S = 2.0


class Endpoint(Protocol):
    async def get_local(self, doc_id: str) -> dict[str, Any] | None: ...

    async def put_local(self, doc: dict[str, Any]) -> str | None:
        """Write a ``_local`` document; its new revision, None when ``_rev`` is stale."""
        ...


@dataclass
class Checkpoint:
    """One direction's checkpoint, read once per process and then kept (with the ``_local``
    revisions of both sides), so a cycle with nothing to move costs no checkpoint request."""

    doc_id: str
    since: Any
    session: str
    revs: list[str | None] = field(default_factory=lambda: [None, None])


Checkpoints = dict[str, Checkpoint]


def replication_id(local_uuid: str, remote_url: str, direction: str) -> str:
    material = f"couchgate-sync\0{local_uuid}\0{remote_url}\0{direction}".encode()
    return "_local/" + hashlib.sha256(material).hexdigest()[:32]


async def _read_checkpoint(doc_id: str, a: Endpoint, b: Endpoint, start: Any) -> Checkpoint:
    mine, theirs = await a.get_local(doc_id), await b.get_local(doc_id)
    if (
        mine is not None
        and theirs is not None
        and mine.get("session_id") == theirs.get("session_id")
        and mine.get("last_seq") == theirs.get("last_seq")
    ):
        return Checkpoint(
            doc_id, mine["last_seq"], str(mine["session_id"]), [mine["_rev"], theirs["_rev"]]
        )
    revs = [found["_rev"] if found else None for found in (mine, theirs)]
    return Checkpoint(doc_id, start, uuid.uuid4().hex, revs)


async def _checkpoint(
    cache: Checkpoints | None, doc_id: str, a: Endpoint, b: Endpoint, start: Any
) -> Checkpoint:
    if cache is not None and doc_id in cache:
        return cache[doc_id]
    cp = await _read_checkpoint(doc_id, a, b, start)
    if cache is not None:
        cache[doc_id] = cp
    return cp


async def _write_checkpoint(cp: Checkpoint, a: Endpoint, b: Endpoint) -> None:
    for index, side in enumerate((a, b)):
        # CouchDB's own checkpoint fields: an encrypted app's _local docs may hold nothing else.
        doc: dict[str, Any] = {
            "_id": cp.doc_id,
            "last_seq": cp.since,
            "session_id": cp.session,
            "replicator": "couchgate-sync",
        }
        if cp.revs[index] is not None:
            doc["_rev"] = cp.revs[index]
        cp.revs[index] = await _put_local(side, doc)


class _Saver:
    """Writes ``cp`` once ``CHECKPOINT_EVERY_S`` have passed since the last write, and at
    :meth:`flush`; ``cp.since`` is always where this process stands."""

    def __init__(self, cp: Checkpoint, a: Endpoint, b: Endpoint) -> None:
        self._cp, self._a, self._b = cp, a, b
        self._written = cp.since
        self._at = time.monotonic()

    async def advance(self, since: Any) -> None:
        self._cp.since = since
        if time.monotonic() - self._at >= CHECKPOINT_EVERY_S:
            await self.flush()

    async def flush(self) -> None:
        if self._cp.since != self._written:
            await _write_checkpoint(self._cp, self._a, self._b)
            self._written = self._cp.since
        self._at = time.monotonic()


async def _put_local(side: Endpoint, doc: dict[str, Any]) -> str:
    """Write a checkpoint; a stale ``_rev`` (another run of ours moved it) is re-read once."""
    rev = await side.put_local(doc)
    if rev is None:
        current = await side.get_local(str(doc["_id"]))
        retry = (
            {**doc, "_rev": current["_rev"]}
            if current
            else {k: v for k, v in doc.items() if k != "_rev"}
        )
        rev = await side.put_local(retry)
    if rev is None:
        raise RemoteError("a replication checkpoint kept changing while it was written")
    return rev


def revisions_wanted(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The ``_revs_diff`` question for the rows of a ``_changes`` feed: each id's revisions."""
    wanted: dict[str, list[str]] = {}
    for row in rows:
        revs = [c["rev"] for c in row.get("changes", []) if isinstance(c, dict)]
        if isinstance(row.get("id"), str) and revs:
            wanted.setdefault(row["id"], []).extend(revs)
    return wanted


def _requests(diff: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"id": doc_id, "rev": rev}
        for doc_id, entry in diff.items()
        for rev in entry.get("missing", [])
    ]


def _ok_docs(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        item["ok"]
        for result in results
        for item in result.get("docs", [])
        if isinstance(item, dict) and isinstance(item.get("ok"), dict)
    ]


Progress = Callable[[int], None]


async def push(
    local: LocalDb,
    remote: Remote,
    rep_id: str,
    progress: Progress | None = None,
    cache: Checkpoints | None = None,
    refused: dict[str, str] | None = None,
) -> int:
    """Local -> server; the number of revisions written to the server.

    One ``_bulk_docs`` is on its way while the next is read from the local store (see
    :class:`_Pipeline`).

    ``refused`` (doc id -> the server's reason) collects the documents the server refuses for
    quota (403 ``forbidden`` per document, or the whole request at the quota) instead of
    failing the push: the others go on, and the checkpoint stays before the first page with a
    refusal, so every later push sends them again. Once the server refused a whole request,
    the rest is only listed, not sent (it would be refused alike). Without ``refused`` any
    refusal fails the push.
    """
    cp = await _checkpoint(cache, rep_id, local, remote, 0)
    saver = _Saver(cp, local, remote)
    since = int(cp.since)
    outbox = _Outbox(remote, progress, refused)
    pipeline = _Pipeline(saver)
    try:
        while True:
            page = await local.changes(since, BATCH)
            if not page.rows:
                break
            diff = await remote.revs_diff(revisions_wanted(page.rows))
            requests = _requests(diff)
            before = outbox.refusals()
            if outbox.full:
                outbox.hold(requests)
                requests = []
            pending: list[tuple[str, bytes]] = []  # (doc id, the document as JSON)
            size = 0
            for start in range(0, len(requests), FETCH_GROUP):
                for doc in _ok_docs(await local.bulk_get(requests[start : start + FETCH_GROUP])):
                    encoded = _encoded(doc)
                    if pending and size + len(encoded) > MAX_BODY_BYTES:
                        await pipeline.start(outbox.send(pending))
                        pending, size = [], 0
                    pending.append((str(doc["_id"]), encoded))
                    size += len(encoded)
            if pending:
                await pipeline.start(outbox.send(pending))
            pipeline.page_done(page.last_seq, held=functools.partial(outbox.refused_since, before))
            since = page.last_seq
        await pipeline.drain()
    finally:
        await pipeline.close()
    await saver.flush()
    return pipeline.done


def _encoded(doc: dict[str, Any]) -> bytes:
    """A document as JSON for ``_bulk_docs``: by ``orjson`` (a first sync encodes every
    document), by ``json`` where ``orjson`` refuses (an integer past 64 bits)."""
    try:
        return orjson.dumps(doc)
    except TypeError:
        return json.dumps(doc, separators=(",", ":")).encode()


class _Pipeline:
    """One request's work on its way while the next is made ready: a push reads the next page
    from the local store while the server writes the last one, a pull fetches the next
    documents while the last are stored, where each used to wait for the other. A page's
    checkpoint is taken once the work of the page is done (:meth:`page_done`), never before
    its documents are where the checkpoint says they are."""

    def __init__(self, saver: _Saver) -> None:
        self._saver = saver
        self._running: asyncio.Task[int] | None = None
        self._pages: list[tuple[Any, Callable[[], bool]]] = []  # done once the work is
        self.held = False  # a page's checkpoint is held back, and so every later one
        self.done = 0  # what the work done so far counted (documents written)

    async def start(self, work: Coroutine[Any, Any, int]) -> None:
        """Start ``work`` once the work before it is done; its failure is raised by the next
        :meth:`start`, :meth:`run` or :meth:`drain`."""
        await self._before(work)
        self._running = asyncio.create_task(work)

    async def run(self, work: Coroutine[Any, Any, int]) -> None:
        """Do ``work`` now, after the work before it (one too large to hold another beside)."""
        await self._before(work)
        self.done += await work

    async def _before(self, work: Coroutine[Any, Any, int]) -> None:
        try:
            await self.drain()
        except BaseException:
            work.close()  # never started: the failure before it is the one raised
            raise

    def page_done(self, since: Any, held: Callable[[], bool] = lambda: False) -> None:
        """All of a page's work is started: its checkpoint, ``since``, follows once that work
        is done, unless ``held()`` says then that the page must be done again."""
        self._pages.append((since, held))

    async def drain(self) -> None:
        """Wait for the work on its way; then checkpoint the pages it completes."""
        if self._running is not None:
            running, self._running = self._running, None
            self.done += await running
        pages, self._pages = self._pages, []
        for since, held in pages:
            self.held = self.held or held()
            if not self.held:
                await self._saver.advance(since)

    async def close(self) -> None:
        """Stop work still on its way (the replication failed elsewhere)."""
        running, self._running = self._running, None
        if running is not None:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running  # its own failure, if any, is not the one being raised


class _Outbox:
    """Where a push sends its ``_bulk_docs``, and what the server refused (see :func:`push`)."""

    def __init__(
        self, remote: Remote, progress: Progress | None, refused: dict[str, str] | None
    ) -> None:
        self._remote = remote
        self._progress = progress
        self._refused = refused
        self.full = False  # the server refused a whole request: the quota is reached

    def refusals(self) -> int:
        return len(self._refused) if self._refused is not None else 0

    def refused_since(self, refusals: int) -> bool:
        """Whether the server refused more than ``refusals`` documents (counted before a page)."""
        return self.refusals() > refusals

    def hold(self, requests: list[dict[str, str]]) -> None:
        assert self._refused is not None and self.full
        reason = next(iter(self._refused.values()))
        for request in requests:
            self._refused.setdefault(request["id"], reason)

    async def send(self, docs: list[tuple[str, bytes]]) -> int:
        refused = self._refused
        try:
            errors = await self._remote.bulk_docs_replicated([data for _, data in docs])
        except QuotaReached as exc:
            if refused is None:
                raise
            self.full = True
            refused.update((doc_id, str(exc)) for doc_id, _ in docs)
            return 0
        if refused is not None:
            for error in errors:
                if error.get("error") == "forbidden" and isinstance(error.get("id"), str):
                    refused[error["id"]] = str(error.get("reason") or "refused by the server")
            errors = [e for e in errors if e.get("error") != "forbidden"]
        if errors:
            raise RemoteError(
                f"the server refused {len(errors)} document(s): {errors[0].get('reason')}"
            )
        taken = len(docs) - sum(1 for doc_id, _ in docs if refused and doc_id in refused)
        if self._progress:
            self._progress(taken)
        return taken


async def _pull_group(
    local: LocalDb,
    remote: Remote,
    requests: list[dict[str, str]],
    progress: Progress | None,
    pipeline: _Pipeline,
) -> None:
    """One ``_bulk_get``, written to the local store as it arrives, at most about
    ``PULL_BATCH_BYTES`` of documents (or one document, when it is larger) at a time. The
    last, smaller batch is stored while the next ``_bulk_get`` arrives; a full one alone, so
    no more than one batch of large files is ever held."""
    pending: list[dict[str, Any]] = []
    size = 0
    # Closed on the way out, also when a write fails halfway through the answer.
    async with contextlib.aclosing(remote.bulk_get(requests)) as answer:
        async for doc, doc_bytes in answer:
            pending.append(doc)
            del doc  # pending holds it alone, so a batch written is a batch freed
            size += doc_bytes
            if size >= PULL_BATCH_BYTES:
                await pipeline.run(_store(local, pending, progress))
                pending, size = [], 0
    if pending:
        await pipeline.start(_store(local, pending, progress))


async def _store(local: LocalDb, docs: list[dict[str, Any]], progress: Progress | None) -> int:
    await local.bulk_docs_replicated(docs)
    if progress:
        progress(len(docs))
    return len(docs)


async def pull(
    local: LocalDb,
    remote: Remote,
    rep_id: str,
    progress: Progress | None = None,
    cache: Checkpoints | None = None,
) -> tuple[int, Any]:
    """Server -> local; the number of revisions written locally and the server seq reached.
    The next documents are fetched while the last are stored (see :class:`_Pipeline`)."""
    cp = await _checkpoint(cache, rep_id, local, remote, 0)
    saver = _Saver(cp, local, remote)
    since: Any = cp.since
    pipeline = _Pipeline(saver)
    try:
        while True:
            feed = await remote.changes(str(since), limit=BATCH)
            results = [r for r in feed.get("results", []) if isinstance(r, dict)]
            if results:
                requests = _requests(await local.revs_diff(revisions_wanted(results)))
                for start in range(0, len(requests), PULL_GROUP):
                    group = requests[start : start + PULL_GROUP]
                    await _pull_group(local, remote, group, progress, pipeline)
            last = feed.get("last_seq", since)
            if last != since:
                since = last
                pipeline.page_done(since)
            if len(results) < BATCH:
                break
        await pipeline.drain()
    finally:
        await pipeline.close()
    await saver.flush()
    return pipeline.done, since
