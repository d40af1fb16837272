"""``history``, ``restore``, ``--deleted`` and ``status``.

A file's history is its version documents (``versions``: replaced and deleted contents, kept on
the server for the configured term) plus its current content, oldest first and numbered from 1;
a renamed file's history starts with the versions it had under its old path (``renames``).
``restore`` writes the chosen content back into the folder, where the next scan records it as a
new edit (saving the content it replaces as a version in turn), so every device gets it; for a
deleted file it brings the file back.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import deletions, failures, folder, marker, notes, renames, runstate, scan, versions
from .contents import Contents
from .device import DeviceContext
from .ignore import Ignore
from .replicate import replication_id, revisions_wanted
from .state import Meta

if TYPE_CHECKING:
    from .config import FolderConfig
    from .remote import Remote


LEAVES_PER_READ = 500  # documents whose leaves one read of the local store opens


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Entry:
    doc_id: str
    rev: str
    kind: str
    mtime_ms: int
    origin: str
    size: int
    current: bool


async def entries(context: DeviceContext, contents: Contents, path: str) -> list[Entry]:
    """Every kept version of ``path``, oldest first, the current content (if any) last."""
    path = notes.normalize(path).rstrip("/")  # "a.md/" (a shell's completion) names no file
    kept = await renames.earlier_versions(context, path)
    kept += await asyncio.to_thread(context.state.versions_of, path)
    found = [Entry(v.id, "", versions.KIND, v.mtime_ms, v.origin, v.size, False) for v in kept]
    row = await asyncio.to_thread(context.state.get, path)
    doc_id = row.doc_id if row else notes.doc_id_for(path, context.keyring)
    tree = await context.local.tree(doc_id)
    current = await contents.winner_note(tree)
    if tree is not None and current is not None:
        found.append(
            Entry(
                doc_id,
                tree.winner,
                "file",
                current.mtime_ms,
                current.origin,
                len(current.data),
                True,
            )
        )
    return found


async def _content(context: DeviceContext, contents: Contents, entry: Entry) -> notes.Note | None:
    if entry.kind == "file":
        return await contents.note_at(entry.doc_id, entry.rev)
    return await version_note(context, contents, entry.doc_id)


async def version_note(
    context: DeviceContext, contents: Contents, version_id: str
) -> notes.Note | None:
    """The content kept in version document ``version_id`` (None once it is pruned)."""
    tree = await context.local.tree(version_id)
    if tree is None or tree.deleted:
        return None
    return await contents.note_at(version_id, tree.winner, kind=versions.KIND)


async def list_versions(context: DeviceContext, contents: Contents, path: str) -> str:
    kept = await entries(context, contents, path)
    if not kept:
        return "no versions kept of that file"
    lines = [f"{'#':>3}  {'time':<20}  {'device':<20}  size"]
    for number, entry in enumerate(kept, 1):
        when = _when(entry.mtime_ms)
        mark = "  (current)" if entry.current else ""
        lines.append(f"{number:>3}  {when:<20}  {entry.origin:<20}  {entry.size}{mark}")
    return "\n".join(lines)


async def deleted_paths(context: DeviceContext) -> dict[str, versions.VersionRow]:
    """Paths with kept versions but no current file: the newest version of each."""
    latest: dict[str, versions.VersionRow] = {}
    for v in await asyncio.to_thread(context.state.all_versions):
        latest[v.path] = v
    docs = sorted({v.of_doc for v in latest.values()})
    live: set[str] = set()  # a document is deleted when none of its leaves is live
    for start in range(0, len(docs), LEAVES_PER_READ):
        for doc_id, leaf in await context.local.leaves(docs[start : start + LEAVES_PER_READ]):
            if not leaf.get("_deleted"):
                live.add(doc_id)
    return {path: v for path, v in latest.items() if v.of_doc not in live}


async def list_deleted(context: DeviceContext) -> str:
    lines = []
    for path, v in sorted((await deleted_paths(context)).items()):
        if (new := await renames.moved_to(context, v.of_doc, path)) is not None:
            lines.append(f"{path}  (moved to {new})")
        else:
            lines.append(
                f"{path}  (deleted; last version {_when(v.mtime_ms)}, kept until "
                f"{_when(v.kept_until)})"
            )
    return "\n".join(lines) if lines else "no deleted files kept"


async def restore(
    context: DeviceContext, contents: Contents, path: str, version: int | None
) -> str:
    """Write version ``version`` (1 = oldest; default the newest kept) of ``path`` back."""
    kept = await entries(context, contents, path)
    if not kept:
        raise FileNotFoundError("no versions kept of that file")
    if version is not None and not 1 <= version <= len(kept):
        raise FileNotFoundError(f"there are versions 1 to {len(kept)} of that file")
    number = version or len(kept)
    note = await _content(context, contents, kept[number - 1])
    if note is None:
        raise FileNotFoundError("that version is no longer kept")
    path = notes.normalize(path)  # a version from before a rename goes to the new path
    await asyncio.to_thread(
        folder.write_atomic, context.root, path, note.data, int(time.time() * 1000)
    )
    return f"restored version {number} of {path}"


async def status(context: DeviceContext, remote: Remote, cfg: FolderConfig) -> str:
    state = context.state
    last = int(await asyncio.to_thread(state.meta, Meta.LAST_SYNC, "0"))
    files = len(await asyncio.to_thread(state.files))
    me = await context.local.uuid()
    push_cp = await context.local.get_local(replication_id(me, remote.db_url, "push"))
    pushed = int(push_cp["last_seq"]) if push_cp else 0
    pending_up = await _unsent((await context.local.changes(pushed, 100_000)).rows, remote)
    lines = [
        f"folder:     {context.root}",
        f"server:     {cfg.server} (app {cfg.app}), device {cfg.device!r}",
        f"last sync:  {_when(last * 1000) if last else 'never'}",
        f"files:      {files} synced",
        f"pending:    {await _pending_local(context)}, {pending_up} document(s) not yet uploaded",
        f"conflicts:  {await context.local.conflicted()} unresolved",
        f"versions:   kept {cfg.keep_days} days",
        *await marker.status_lines(context),
        *await deletions.status_lines(context),
    ]
    lines += await asyncio.to_thread(failures.status_lines, state)
    try:
        pull_cp = await context.local.get_local(replication_id(me, remote.db_url, "pull"))
        since = str(pull_cp["last_seq"]) if pull_cp else "0"
        feed = await remote.changes(since, limit=1000)
        lines.append(f"downloads:  {await _waiting(context, feed)} change(s) waiting on the server")
        usage = await remote.usage(cfg.server)
        if usage is not None:
            lines.append(
                f"storage:    {usage.get('doc_count')} documents, {usage.get('size')} bytes used"
            )
            quota = usage.get("quota")
            lines.append(f"quota:      {_quota(quota) if isinstance(quota, dict) else 'none'}")
    except Exception as exc:  # status still shows what it knows when offline or signed out
        lines.append(f"server:     {exc}")
    lines.append(f"run:        {await asyncio.to_thread(runstate.describe, cfg.state_dir)}")
    return "\n".join(lines)


async def _unsent(rows: list[dict[str, Any]], remote: Remote) -> int:
    """The documents among the local changes since the push checkpoint with revisions the
    server lacks: what a push would send. What this device downloaded is in those changes too
    (a pull writes to the local store, and only a push moves its checkpoint past them); it is
    not waiting to go up. Offline, every such change is counted: the server cannot say."""
    if not rows:
        return 0
    try:
        return len(await remote.revs_diff(revisions_wanted(rows)))
    except Exception:  # status still shows what it knows when offline or signed out
        return len(rows)


async def _waiting(context: DeviceContext, feed: dict[str, Any]) -> int:
    """The documents in ``feed`` with revisions the local store lacks: what a pull would
    bring. This device's own uploads come back in the feed too (``run`` pulls only when there
    is news, so its checkpoint lags behind them); they are not waiting."""
    results = [r for r in feed.get("results", []) if isinstance(r, dict)]
    if not results:
        return 0
    return len(await context.local.revs_diff(revisions_wanted(results)))


def _quota(quota: dict[str, object]) -> str:
    """The account's quota for this app as the server counts it (``sizes.external`` plus the
    checkpoints: not quite the ``storage`` figure, which is the database file's size)."""

    def part(used: object, limit: object, unit: str) -> str:
        shown = used if isinstance(used, int) else "?"
        if isinstance(limit, int):
            return f"{shown} of {limit} {unit}"
        return f"{shown} {unit}, no limit"

    return (
        part(quota.get("docs_used"), quota.get("docs"), "documents")
        + "; "
        + part(quota.get("bytes_used"), quota.get("bytes"), "bytes")
    )


async def _pending_local(context: DeviceContext) -> str:
    """What the next scan would record, as the scan counts it (a synced file that has become
    ignored is left alone, not deleted: it is not pending)."""
    if not await asyncio.to_thread(context.root.is_dir):
        return "the folder is missing (nothing recorded from it)"
    ignore = await asyncio.to_thread(Ignore.for_folder, context.root)
    names = await asyncio.to_thread(folder.probe_names, context.root)
    listing, rows = await asyncio.to_thread(scan.listed, context, ignore, names or folder.SENSITIVE)
    seen = listing.files
    changed = sum(
        1
        for p, s in seen.items()
        if (r := rows.get(p)) is None or (r.size, r.mtime_ns) != (s.size, s.mtime_ns)
    )
    gone = sum(1 for p in rows if p not in seen and not ignore.matches(p))
    return f"{changed + gone} local change(s) not yet recorded"
