"""Restoring in bulk: every deleted file of a folder (``restore DIR/``), or the vault or one of
its folders as it was at a point in time (``rewind --to TIME [DIR]``).

Both pick contents from the kept versions (``versions``; the state file indexes them, so the
choice reads no document) and write the chosen ones back into the folder in batches, one
worker-thread hop per batch; the next scan then records them as edits (keeping the contents
they replace as versions in turn, so a rewind is itself undone with another), and every device
gets them. Restoring one file at a time took a process and a sync per file: 2,000 files were a
quarter of an hour of commands.

A rewind to TIME gives each file the content it had then: a file whose current content is
older than TIME is left alone; otherwise the newest kept version saved at or before TIME is
written back. A file deleted since TIME comes back as it was then; a file deleted before TIME
stays deleted (when a file was deleted is when its last version was kept: ``kept_until``
less the term). Files created since TIME are left as they are (a rewind deletes nothing), and a
renamed file keeps its new name (its old path counts as moved, not deleted).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from encryption_plugin import CryptoError, Keyring

from . import folder, history, notes, versions
from .contents import Contents
from .device import DeviceContext
from .versions import VersionRow

BATCH = 200  # files written per worker-thread hop


def prefix_of(path: str) -> str:
    """A folder of the vault as a path prefix: ``Dir/`` -> ``Dir``; ``.``, ``/``, "" -> ""."""
    cleaned = notes.normalize(path).strip("/")
    while cleaned.startswith("./"):
        cleaned = cleaned[2:]
    return "" if cleaned in ("", ".") else cleaned


def _under(path: str, prefix: str) -> bool:
    return not prefix or path.startswith(prefix + "/")


async def _deleted_under(context: DeviceContext, prefix: str) -> dict[str, VersionRow]:
    """The deleted files under ``prefix`` (renamed ones aside), each with its newest version."""
    found = {
        path: newest
        for path, newest in (await history.deleted_paths(context)).items()
        if _under(path, prefix)
    }
    moves = await asyncio.to_thread(_moves_from, context, found)
    return {path: v for path, v in found.items() if path not in moves}


def _moves_from(context: DeviceContext, found: dict[str, VersionRow]) -> set[str]:
    """The paths of ``found`` whose document was renamed away from them (one thread hop)."""
    return {
        path
        for path, v in found.items()
        if any(m.from_path == path for m in context.state.moves_from(v.of_doc))
    }


async def restore_dir(context: DeviceContext, contents: Contents, path: str) -> str:
    """Bring back every deleted file under the vault's folder ``path``, as last kept."""
    prefix = prefix_of(path)
    chosen = {p: (v, "") for p, v in (await _deleted_under(context, prefix)).items()}
    written = await _write_back(context, contents, chosen.items())
    where = f"{prefix}/" if prefix else "the folder"
    return f"restored {written} deleted file(s) in {where}"


async def rewind(context: DeviceContext, contents: Contents, to_ms: int, path: str) -> str:
    """Every file under ``path`` as it was at ``to_ms`` (see the module's docstring)."""
    prefix = prefix_of(path)
    kept: dict[str, list[VersionRow]] = {}
    for v in await asyncio.to_thread(context.state.all_versions):  # by path, oldest first
        if _under(v.path, prefix):
            kept.setdefault(v.path, []).append(v)
    chosen: dict[str, tuple[VersionRow, str]] = {}  # path: (version, current content's hash)
    for row in (await asyncio.to_thread(context.state.files)).values():
        then = _at(kept.get(row.path, []), to_ms)  # None outside prefix, or created since
        if then is not None and row.mtime_ns // 1_000_000 > to_ms:
            chosen[row.path] = (then, row.sha)
    term_ms = contents.keep_days * versions.DAY_MS
    back = 0
    for gone_path, newest in (await _deleted_under(context, prefix)).items():
        then = _at(kept.get(gone_path, []), to_ms)
        if then is not None and newest.kept_until - term_ms > to_ms:  # deleted since to_ms
            chosen[gone_path] = (then, "")
            back += 1
    written = await _write_back(context, contents, chosen.items())
    return f"rewound {written} file(s), {back} of them deleted since then"


def _at(kept: list[VersionRow], to_ms: int) -> VersionRow | None:
    """The newest of ``kept`` (oldest first) saved at or before ``to_ms``."""
    then = [v for v in kept if v.mtime_ms <= to_ms]
    return then[-1] if then else None


async def _write_back(
    context: DeviceContext,
    contents: Contents,
    chosen: Iterable[tuple[str, tuple[VersionRow, str]]],
) -> int:
    """Write each chosen version's content to its path, ``BATCH`` files per thread hop; how
    many were written (a version pruned meanwhile, or the content the file already has, is
    skipped: ``chosen`` pairs each version with the hash of the path's current content)."""
    now_ms = int(time.time() * 1000)  # a new edit for every device, as `restore` writes it
    picked = sorted(chosen)
    written = 0
    for start in range(0, len(picked), BATCH):
        batch = picked[start : start + BATCH]
        found = await context.local.bulk_get([{"id": v.id} for _, (v, _) in batch])
        opened = await asyncio.to_thread(_open_versions, found, context.keyring)
        files: list[tuple[str, bytes]] = []
        for path, (v, current_sha) in batch:
            note = opened.get(v.id)
            if note is None or note.chunks:  # a large file's: put together from its chunks
                note = await history.version_note(context, contents, v.id)
            if note is not None and folder.digest(note.data) != current_sha:
                files.append((path, note.data))
        if files:
            written += await asyncio.to_thread(_write_all, context, files, now_ms)
    return written


def _open_versions(found: list[dict[str, Any]], keyring: Keyring) -> dict[str, notes.Note]:
    """The live version documents of a ``bulk_get`` answer, opened (one thread hop)."""
    opened: dict[str, notes.Note] = {}
    for result in found:
        for item in result.get("docs", []):
            doc = item.get("ok")
            if isinstance(doc, dict) and not doc.get("_deleted"):
                with contextlib.suppress(CryptoError):
                    note = notes.open_note(doc, keyring, kind=versions.KIND)
                    if note is not None:
                        opened[str(doc["_id"])] = note
    return opened


def _write_all(context: DeviceContext, batch: list[tuple[str, bytes]], now_ms: int) -> int:
    """Write a batch (one durable step, see :func:`folder.write_batch`); a file that cannot be
    written fails the command, as it would have one at a time."""
    results = folder.write_batch(context.root, [folder.Write(p, d, now_ms) for p, d in batch])
    for result in results:
        if isinstance(result, Exception):
            raise result
    return len(results)


def parse_time(text: str) -> int:
    """A point in time as ms since the epoch: ISO 8601 (``2026-12-07 13:00``, local time when
    no offset is given) or a span ago (``30m``, ``2h``, ``3d``)."""
    text = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in units:
        return versions.now_ms() - int(text[:-1]) * units[text[-1]] * 1000
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give e.g. 2026-12-07T13:00, 2026-12-07 13:00+01:00 or 2h"
        ) from None
    return int(when.astimezone().timestamp() * 1000)
