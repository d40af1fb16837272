"""Old versions and deleted files, kept on the server as sealed documents of their own.

When a device replaces or deletes a file's content (an edit, a deletion, a merge, a conflict it
settles), it first stores the content being replaced as a *version* document: the same note
format with ``"kind": "version"``, the file document and revision it came from, and how long it
is kept (``kept_until``, ms; 30 days by default). Versions are documents, not old revisions, so
CouchDB's compaction does not touch them and a device that joins later can restore them. Their
id is the keyed id of (file document, revision): two devices saving the same version meet in
one document. Once ``kept_until`` passes, any device deletes them (pruning), so a kept version
costs quota only for its term.

Every device indexes the versions it holds in its state file (``versions`` table) as they
arrive, so ``history`` and ``--deleted`` read no document but the ones asked for.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from encryption_plugin import Keyring, derivations

from . import notes

KIND = "version"
DAY_MS = 86_400_000
DEFAULT_KEEP_DAYS = 30


@dataclass(frozen=True)
class VersionRow:
    id: str
    of_doc: str
    path: str
    rev: str
    mtime_ms: int
    origin: str
    size: int
    kept_until: int


def now_ms() -> int:
    """The clock terms are measured by. ``COUCHGATE_SYNC_CLOCK_OFFSET_S`` moves it (tests stand
    a device a month later with it, rather than wait a month)."""
    offset = float(os.environ.get("COUCHGATE_SYNC_CLOCK_OFFSET_S", "0") or 0)
    return int((time.time() + offset) * 1000)


def version_id(of_doc: str, rev: str, keyring: Keyring) -> str:
    return derivations.version_id(of_doc, rev, keyring)


def seal_version(
    note: notes.Note, of_doc: str, rev: str, keep_days: int, keyring: Keyring
) -> dict[str, Any]:
    kept_until = now_ms() + keep_days * DAY_MS
    return notes.seal_note(
        version_id(of_doc, rev, keyring),
        note.path,
        note.data,
        mtime_ms=note.mtime_ms,
        origin=note.origin,
        created=note.created,
        keyring=keyring,
        extra={"kind": KIND, "of": of_doc, "rev": rev, "kept_until": kept_until},
        chunks=note.chunks,  # a large file's version refers to its chunks, never re-uploads
    )


def row_of(doc_id: str, note: notes.Note) -> VersionRow | None:
    of, rev, until = note.meta.get("of"), note.meta.get("rev"), note.meta.get("kept_until")
    if not (isinstance(of, str) and isinstance(rev, str) and isinstance(until, int)):
        return None
    return VersionRow(doc_id, of, note.path, rev, note.mtime_ms, note.origin, len(note.data), until)
