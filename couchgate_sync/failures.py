"""Failed items: documents this device cannot write, and files the server will not take yet.

One note another device could save (a name of 300 bytes, fine on macOS and Windows; a NUL) must
never stop this device, later cycles or other devices, as Syncthing's "failed items" never block
the rest. Such a document is skipped with one warning (its reason and short hash: never its
name), kept in the state file with its path (for ``status``, the person's own folder), reason and
since when, and tried again when its cause may have changed: a new revision of it (apply sees it
as any change), a rename or deletion (its tombstone clears it), and at each start of ``run`` or
``sync`` (see :class:`FailedItems`).

Files the server refused for quota wait the same way, in a list of their own: ``sync`` does not
call them synced, ``status`` lists them with the server's reason, and every later push sends
them again (the push checkpoint stays before them, see ``replicate.push``).
"""

from __future__ import annotations

import errno
import json
import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from . import portable_names
from .state import FileRow, Meta, State

log = logging.getLogger("couchgate_sync")

# What a file system says of a name it cannot hold (EILSEQ: not in its encoding; EINVAL: bytes
# or a form it refuses). Errors of the whole folder (full, read-only) are not one item's fault.
_NAME_ERRORS = {errno.ENAMETOOLONG: "name too long for this file system"}
_REFUSED_NAME = "a name this file system refuses"
CASE_CLASH = "another file's name differs from it only in case, which this folder cannot tell apart"
CASE_CLASH_DIR = (
    "one of its folders differs from another folder only in case, which this folder cannot tell "
    "apart (they would merge)"
)


class Unwritable(Exception):
    """A document this device cannot write, for a reason found before trying (a case clash)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Failed:
    """One document this device could not write: for ``status``, and to try again."""

    doc_id: str
    path: str
    rev: str
    reason: str
    since: int  # s since the epoch


def reason_of(exc: BaseException) -> str | None:
    """Why a document cannot be written here, in words without its name; None when ``exc`` is
    not about the document's name (a full disk is not a failed item: it fails the cycle)."""
    if isinstance(exc, Unwritable):
        return exc.reason
    if isinstance(exc, ValueError) and "null" in str(exc):
        return "a NUL byte in the name, which file systems refuse"
    if isinstance(exc, OSError) and exc.errno in _NAME_ERRORS:
        return _NAME_ERRORS[exc.errno]
    if isinstance(exc, OSError) and exc.errno in (errno.EILSEQ, errno.EINVAL):
        return _REFUSED_NAME
    return None


def unwritable(path: str, name_max: int | None) -> str | None:
    """Why ``path`` cannot be a file here, known before trying: a NUL, a component longer
    than ``name_max`` bytes (255 on ext4, in UTF-8; None: not known in bytes), or on Windows a
    name it reserves or cannot end with."""
    if "\0" in path:
        return reason_of(ValueError("embedded null byte"))
    if name_max is not None and any(
        len(part.encode("utf-8", "surrogateescape")) > name_max for part in path.split("/")
    ):
        return _NAME_ERRORS[errno.ENAMETOOLONG]
    if sys.platform == "win32":
        return portable_names.windows_problem(path)
    return None


def case_clash(path: str, doc_id: str, here: Iterable[FileRow]) -> str | None:
    """Why the file of ``doc_id`` at ``path`` cannot be written to a case-insensitive folder:
    a file of another document in ``here`` (the folder's files, as recorded or just written)
    has the same name but for case, and writing it would overwrite that file; or one of the
    folders of ``path`` is, but for case, a folder of a file in ``here`` (``notes/b.md`` beside
    ``Notes/a.md``), and writing it would merge the two folders into one. None otherwise.

    Either of the two documents is a failed item on such a device (the one applied second),
    not renamed: the device that made the names is the one to choose, and a rename here would
    reach every device, case-sensitive ones too, which hold both as they are."""
    parts = path.split("/")
    for row in here:
        if row.path == path or row.doc_id == doc_id:  # its own file (a rename, case only)
            continue
        theirs = row.path.split("/")
        if len(theirs) == len(parts) and row.path.casefold() == path.casefold():
            return CASE_CLASH
        for depth in range(1, min(len(parts), len(theirs))):  # the folders both paths have
            mine, other = "/".join(parts[:depth]), "/".join(theirs[:depth])
            if mine != other and mine.casefold() == other.casefold():
                return CASE_CLASH_DIR
            if mine != other:
                break
    return None


def folder_case_clash(path: str, dirs: Iterable[str], here: Iterable[FileRow]) -> str | None:
    """Why the empty folder ``path`` cannot be made in a case-insensitive folder: it, or one of
    its parents, is another synced folder but for case (an empty one of ``dirs``, or a folder
    of a file of ``here``), and making it would merge the two. None otherwise."""
    parts = path.split("/")
    others = [d.split("/") for d in dirs] + [row.path.split("/")[:-1] for row in here]
    for theirs in others:
        for depth in range(1, min(len(parts), len(theirs)) + 1):
            mine, other = "/".join(parts[:depth]), "/".join(theirs[:depth])
            if mine == other:
                continue
            if mine.casefold() == other.casefold():
                return CASE_CLASH_DIR
            break
    return None


def clashing(state: State, path: str) -> list[FileRow]:
    """The recorded files :func:`case_clash` looks at for ``path``: its twin but for case, and
    a file under each of its folders spelled in another case."""
    parts = path.split("/")
    found = [state.by_folded(path)]
    found += [state.by_folded_dir("/".join(parts[:d])) for d in range(1, len(parts))]
    return [row for row in found if row is not None]


class FailedItems:
    """The failed items of one folder, in its state file (``Meta.FAILED``: few, read whole
    once, then kept here: apply asks about every document it applies)."""

    def __init__(self, state: State) -> None:
        self._state = state
        self._items: dict[str, Failed] | None = None

    def load(self) -> dict[str, Failed]:
        if self._items is None:
            raw = json.loads(self._state.meta(Meta.FAILED, "{}"))
            self._items = {doc_id: Failed(**item) for doc_id, item in raw.items()}
        return dict(self._items)

    def _save(self, items: dict[str, Failed]) -> None:
        self._items = items
        self._state.set_meta(Meta.FAILED, json.dumps({k: asdict(v) for k, v in items.items()}))

    def skipped(self, doc_id: str, path: str, rev: str, reason: str) -> None:
        """Keep a document as failed; one warning, the first time it fails for this reason at
        this revision (a retry that fails again says nothing new)."""
        items = self.load()
        known = items.get(doc_id)
        if known is not None and (known.rev, known.reason) == (rev, reason):
            return
        since = known.since if known is not None else int(time.time())
        items[doc_id] = Failed(doc_id, path, rev, reason, since)
        self._save(items)
        log.warning(
            "skipped a document this device cannot write (%s; document %s): "
            "`couchgate-sync status` lists it, and it is tried again when it changes",
            reason,
            doc_id[:8],
        )

    def clashes_cleared(self) -> list[str]:
        """The case clashes whose other file or folder is gone (renamed or deleted since): to
        try again."""
        return [
            f.doc_id
            for f in self.load().values()
            if f.reason in (CASE_CLASH, CASE_CLASH_DIR)
            and case_clash(f.path, f.doc_id, clashing(self._state, f.path)) is None
        ]

    def settled(self, doc_id: str) -> None:
        """The document was applied (or deleted): no longer failed."""
        items = self.load()
        if items.pop(doc_id, None) is not None:
            self._save(items)
            log.info("a failed document (%s) is written now", doc_id[:8])


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def shown(path: str) -> str:
    """A path as ``status`` prints it: control characters (a NUL) as escapes."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in path)


def status_lines(state: State) -> list[str]:
    """What ``status`` says of failed items and of files waiting for the server."""
    lines: list[str] = []
    failed = FailedItems(state).load()
    if failed:
        lines.append(f"failed:     {len(failed)} document(s) this device cannot write")
        for item in sorted(failed.values(), key=lambda f: f.path):
            lines.append(f"  {shown(item.path)}  ({item.reason}; since {_when(item.since)})")
    waiting = Waiting.load(state)
    if waiting.paths or waiting.others:
        count = len(waiting.paths) + waiting.others
        lines.append(f"waiting:    {count} document(s) the server refused: {waiting.reason}")
        for path in sorted(waiting.paths):
            lines.append(f"  {shown(path)}")
        if waiting.others:
            lines.append(f"  and {waiting.others} other document(s) (kept versions, chunks)")
    return lines


@dataclass(frozen=True)
class Waiting:
    """Files the server refused (its quota), as the last push found them: sent again by every
    later push until the server takes them."""

    paths: list[str]
    others: int  # refused documents that are not a file's (versions, chunks, folders)
    reason: str
    since: int

    @staticmethod
    def load(state: State) -> Waiting:
        raw = json.loads(state.meta(Meta.WAITING, "{}"))
        return Waiting(
            list(raw.get("paths", [])),
            int(raw.get("others", 0)),
            str(raw.get("reason", "")),
            int(raw.get("since", 0)),
        )


def record_waiting(state: State, refused: dict[str, str]) -> int:
    """Keep what the last push had refused (doc id -> the server's reason); one warning when
    that changes, none while it stays. How many documents wait."""
    before = Waiting.load(state)
    paths: list[str] = []
    others = 0
    for doc_id in refused:
        row = state.by_doc(doc_id)
        if row is not None:
            paths.append(row.path)
        else:
            others += 1
    reason = next(iter(refused.values()), "")
    since = before.since if before.paths or before.others else int(time.time())
    now = Waiting(sorted(paths), others, reason, since if refused else 0)
    if (now.paths, now.others, now.reason) != (before.paths, before.others, before.reason):
        state.set_meta(Meta.WAITING, json.dumps(asdict(now)))
        if refused:
            log.warning(
                "%d file(s) and %d other document(s) wait for the server (%s): "
                "`couchgate-sync status` lists them; they are sent again at every sync",
                len(paths),
                others,
                reason,
            )
        else:
            log.info("the server took every file that waited")
    return len(refused)


def sync_outcome(state: State, waiting: int) -> int:
    """``sync``'s exit code: not 0 while documents wait for the server, whose reason it says
    (a sync that left files behind is not a success)."""
    if not waiting:
        return 0
    log.error(
        "%d document(s) not synced: %s (`couchgate-sync status` lists the files; they are sent "
        "again at the next sync)",
        waiting,
        Waiting.load(state).reason,
    )
    return 1
