"""``history``, ``restore``, ``--deleted`` and ``status``, read from the device's local store.

The local store never compacts, so it keeps the body of every revision this device has held:
its own edits and every version it pulled. ``history PATH`` lists those (oldest first, numbered);
``restore`` writes the chosen version back into the folder, where the next scan records it as a
new edit, so every device gets it. Not yet done (see docs/sync-client.md): versions kept on the
server as sealed documents of their own, with automatic pruning after 30 days.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway.store import revtree

from . import folder, notes
from .replicate import replication_id

if TYPE_CHECKING:
    from .config import FolderConfig
    from .localdb import DocTree
    from .remote import Remote
    from .sync import FolderDevice


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


async def _doc_for(device: FolderDevice, path: str) -> DocTree | None:
    path = notes.normalize(path)
    row = await asyncio.to_thread(device.state.get, path)
    doc_id = row.doc_id if row else notes.doc_id_for(path, device.keyring)
    return await device.local.tree(doc_id)


async def versions(device: FolderDevice, path: str) -> list[notes.Note]:
    """Every kept live version of ``path``, oldest first."""
    tree = await _doc_for(device, path)
    if tree is None:
        return []
    revs = sorted(
        (rev for rev, node in tree.tree.items() if not node.deleted),
        key=lambda rev: (revtree.rev_pos(rev), rev),
    )
    found: list[notes.Note] = []
    for rev in revs:
        note = await device.note_at(tree.id, rev)
        if note is not None:
            found.append(note)
    return found


async def list_versions(device: FolderDevice, path: str) -> str:
    kept = await versions(device, path)
    if not kept:
        return "no versions kept of that file"
    lines = [f"{'#':>3}  {'time':<20}  {'device':<20}  size"]
    for number, note in enumerate(kept, 1):
        when = _when(note.mtime_ms)
        lines.append(f"{number:>3}  {when:<20}  {note.device:<20}  {len(note.data)}")
    return "\n".join(lines)


async def list_deleted(device: FolderDevice) -> str:
    lines = []
    for doc_id in await device.local.deleted_ids():
        tree = await device.local.tree(doc_id)
        if tree is None:
            continue
        for rev in revtree.ancestry(tree.tree, tree.winner)[1:]:
            note = await device.note_at(doc_id, rev)
            if note is not None:
                lines.append(f"{note.path}  (last version {_when(note.mtime_ms)})")
                break
    return "\n".join(lines) if lines else "no deleted files kept"


async def restore(device: FolderDevice, path: str, version: int | None) -> str:
    """Write version ``version`` (1 = oldest; default the newest) of ``path`` into the folder."""
    kept = await versions(device, path)
    if not kept:
        raise FileNotFoundError("no versions kept of that file")
    if version is not None and not 1 <= version <= len(kept):
        raise FileNotFoundError(f"there are versions 1 to {len(kept)} of that file")
    note = kept[(version or len(kept)) - 1]
    await asyncio.to_thread(
        folder.write_atomic, device.root, note.path, note.data, int(time.time() * 1000)
    )
    return f"restored version {version or len(kept)} of {note.path}"


async def status(device: FolderDevice, remote: Remote, cfg: FolderConfig) -> str:
    state = device.state
    last = int(await asyncio.to_thread(state.meta, "last_sync", "0"))
    files = len(await asyncio.to_thread(state.files))
    me = await device.local.uuid()
    push_cp = await device.local.get_local(replication_id(me, remote.db_url, "push"))
    pushed = int(push_cp["last_seq"]) if push_cp else 0
    pending_up = len((await device.local.changes(pushed, 100_000)).rows)
    pending_local = await _pending_local(device)
    lines = [
        f"folder:     {device.root}",
        f"server:     {cfg.server} (app {cfg.app}), device {cfg.device!r}",
        f"last sync:  {_when(last * 1000) if last else 'never'}",
        f"files:      {files} synced",
        f"pending:    {pending_local} local change(s) not yet recorded, "
        f"{pending_up} revision(s) not yet uploaded",
        f"conflicts:  {await device.local.conflicted()} unresolved",
    ]
    try:
        pull_cp = await device.local.get_local(replication_id(me, remote.db_url, "pull"))
        since = str(pull_cp["last_seq"]) if pull_cp else "0"
        feed = await remote.changes(since, limit=1000)
        lines.append(f"downloads:  {len(feed.get('results', []))} change(s) waiting on the server")
        usage = await remote.usage(cfg.server)
        if usage is not None:
            lines.append(
                f"storage:    {usage.get('doc_count')} documents, {usage.get('size')} bytes used"
            )
    except Exception as exc:  # status still shows what it knows offline
        lines.append(f"server:     {exc}")
    return "\n".join(lines)


async def _pending_local(device: FolderDevice) -> int:
    from .ignore import Ignore

    ignore = await asyncio.to_thread(Ignore.for_folder, device.root)
    seen = await asyncio.to_thread(folder.scan, device.root, ignore)
    rows = await asyncio.to_thread(device.state.files)
    changed = sum(
        1 for p, s in seen.items()
        if (r := rows.get(p)) is None or (r.size, r.mtime_ns) != (s.size, s.mtime_ns)
    )
    return changed + sum(1 for p in rows if p not in seen)
