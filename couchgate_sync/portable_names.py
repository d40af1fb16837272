"""Names other systems cannot hold: said once, when such a file is first recorded.

A file saved here as ``CON.md``, ``draft.`` or ``a?b.md`` syncs (this device holds it, and so
may the others), but a Windows device cannot write it, and a name over 255 bytes does not fit
ext4: those devices list it as a failed item (see ``failures``). The person who made it is told
at the scan that first records it, once (a file with a state row is never new again), with the
reasons and a count: never the names, which stay out of logs.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable

log = logging.getLogger("couchgate_sync")

_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{p}{n}" for p in ("COM", "LPT") for n in "123456789"}
)
_WINDOWS_CHARS = re.compile(r'[<>:"\\|?*\x00-\x1f]')
NAME_MAX_BYTES = 255


def problem(path: str) -> str | None:
    """Why some system cannot hold ``path`` (``/``-separated, as synced), or None."""
    for part in path.split("/"):
        if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX_BYTES:
            return "a name over 255 bytes (too long for Linux file systems)"
    return windows_problem(path)


def windows_problem(path: str) -> str | None:
    """Why Windows cannot hold ``path``, or None (a reserved name would even be written to a
    device there, not a file: on Windows such a document is a failed item, see ``failures``)."""
    for part in path.split("/"):
        if part.split(".")[0].rstrip(" ").upper() in _RESERVED:
            return "a name Windows reserves (CON, NUL, COM1…)"
        if part.endswith((".", " ")):
            return "a name ending in a dot or a space (Windows drops it)"
        if _WINDOWS_CHARS.search(part):
            return 'a character Windows refuses (<>:"\\|?*)'
    return None


def warn_new(paths: Iterable[str]) -> None:
    """One warning per reason for files recorded for the first time that some system cannot
    hold (no name in any log line)."""
    found: Counter[str] = Counter()
    for path in paths:
        if (why := problem(path)) is not None:
            found[why] += 1  # never the name, at any level
    for why, count in sorted(found.items()):
        log.warning(
            "%d new file(s) have %s: they sync, but devices that cannot hold the name list them "
            "as failed items (rename them to sync everywhere)",
            count,
            why,
        )
