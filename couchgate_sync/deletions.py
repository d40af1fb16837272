"""The mass-deletion guard: a scan that would delete much of the vault holds those deletions.

``rm -rf Notes/*`` by mistake, a sync tool or script gone wrong, a folder half-copied: each
looks to a scan like the person deleting files, and each deletion would reach every device.
Dropbox and Obsidian Sync ask before a mass deletion; so does this client. A scan that finds
more files gone than the folder's threshold (more than ``deletion_guard_share`` of the synced
files *and* more than ``deletion_guard_files``: half and 20 by default, in the folder's
settings) records none of those deletions: their state rows stay, nothing reaches the server,
and every other change still syncs. The held paths are kept in the state file
(``Meta.HELD_DELETIONS``), logged once when they change, and listed by ``status``, until the
person decides with one command:

- ``deletions confirm``: the held paths are marked confirmed (``Meta.CONFIRMED_DELETIONS``), and
  the next scan records their deletions whatever their number; they then sync as any deletion.
- ``deletions undo``: each held file is written back from the local store (the content it was
  last in step with), and its row is updated, so nothing is recorded at all.

A rename is not a deletion (``renames`` pairs those first), and a deletion that arrives from
another device is not a scan's: neither is held.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

from . import folder
from .contents import Contents, row_of
from .device import DeviceContext
from .state import FileRow, Meta, State

log = logging.getLogger("couchgate_sync")

ADVICE = "run `couchgate-sync deletions confirm` or `deletions undo`"


@dataclass(frozen=True)
class Guard:
    """When a scan's deletions are held: more than ``share`` of the synced files and more
    than ``files`` of them (the folder's settings ``deletion_guard_share``/``_files``)."""

    share: float = 0.5
    files: int = 20

    def holds(self, deleting: int, synced: int) -> bool:
        return deleting > self.files and deleting > self.share * synced


def _paths(state: State, key: Meta) -> list[str]:
    raw = state.meta(key, "")
    found = json.loads(raw) if raw else []
    return [p for p in found if isinstance(p, str)]


def _set_paths(state: State, key: Meta, paths: list[str]) -> None:
    state.set_meta(key, json.dumps(sorted(paths)) if paths else "")


async def held(context: DeviceContext) -> list[str]:
    """The paths whose deletion is held now."""
    return await asyncio.to_thread(_paths, context.state, Meta.HELD_DELETIONS)


def undecided(state: State) -> frozenset[str]:
    """The paths whose deletion is held or was just confirmed: a partial scan looks at them
    whatever changed, so they stay held, or are recorded, as after a full scan."""
    return frozenset(_paths(state, Meta.HELD_DELETIONS) + _paths(state, Meta.CONFIRMED_DELETIONS))


async def screen(
    context: DeviceContext, guard: Guard, gone: list[FileRow], synced: int
) -> list[FileRow]:
    """Scan side: the deletions among ``gone`` to record now (those confirmed, and the rest
    unless there are too many of them); those held are kept for ``status`` and logged."""
    state = context.state
    confirmed = set(await asyncio.to_thread(_paths, state, Meta.CONFIRMED_DELETIONS))
    passed = [row for row in gone if row.path in confirmed]
    rest = [row for row in gone if row.path not in confirmed]
    holding = [row.path for row in rest] if guard.holds(len(rest), synced) else []
    before = await held(context)
    if sorted(holding) != before and holding:
        log.warning(
            "%d deletions held (more than %d files and %.0f%% of the %d synced): %s",
            len(holding),
            guard.files,
            guard.share * 100,
            synced,
            ADVICE,
        )
    await asyncio.to_thread(_set_paths, state, Meta.HELD_DELETIONS, holding)
    if confirmed:
        await asyncio.to_thread(_set_paths, state, Meta.CONFIRMED_DELETIONS, [])
    return passed if holding else passed + rest


async def confirm(context: DeviceContext) -> int:
    """Mark the held deletions confirmed (the next scan records them); how many."""
    paths = await held(context)
    await asyncio.to_thread(_set_paths, context.state, Meta.CONFIRMED_DELETIONS, paths)
    return len(paths)


async def undo(context: DeviceContext, contents: Contents) -> int:
    """Write every held file back from the local store; how many were written."""
    state, root = context.state, context.root
    written = 0
    rows: list[FileRow] = []
    for path in await held(context):
        row = await asyncio.to_thread(state.get, path)
        if row is None or await asyncio.to_thread(folder.stat_of, root, path) is not None:
            continue  # deleted elsewhere meanwhile, or already back
        rev, note = row.rev, await contents.note_at(row.doc_id, row.rev)
        if note is None:  # that revision's body is gone: the document's current content
            tree = await context.local.tree(row.doc_id)
            note = await contents.winner_note(tree)
            rev = tree.winner if tree is not None else rev
        if note is None:
            continue
        seen = await asyncio.to_thread(folder.write_atomic, root, path, note.data, note.mtime_ms)
        rows.append(row_of(path, row.doc_id, rev, seen, folder.digest(note.data)))
        written += 1
        if len(rows) >= 100:
            await asyncio.to_thread(state.put, rows)
            rows = []
    if rows:
        await asyncio.to_thread(state.put, rows)
    await asyncio.to_thread(_set_paths, state, Meta.HELD_DELETIONS, [])
    return written


async def status_lines(context: DeviceContext) -> list[str]:
    """``status``'s line about held deletions (none when nothing is held)."""
    paths = await held(context)
    if not paths:
        return []
    return [f"deletions:  {len(paths)} deletions held: {ADVICE}"]
