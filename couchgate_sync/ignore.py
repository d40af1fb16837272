"""Which paths are synced: ``.couchgateignore`` in gitignore syntax (``pathspec``) plus defaults.

The defaults keep out what is a device's own business (version-control data, editor swap and
backup files, Finder and Explorer litter, Obsidian's per-device workspace layout) and this
client's own temporary files and folder marker.
"""

from __future__ import annotations

from pathlib import Path

import pathspec

IGNORE_FILE = ".couchgateignore"
TEMP_PREFIX = ".couchgate-tmp-"
MARKER = ".couchgate-folder"  # the folder marker (see marker.py): never synced

DEFAULTS = [
    ".git/",
    ".hg/",
    ".svn/",
    ".DS_Store",
    "Thumbs.db",
    "desktop.ini",
    "*.swp",
    "*.swo",
    "*.swx",
    ".*.swp",
    "*~",
    ".#*",
    "#*#",
    ".obsidian/workspace*.json",
    ".obsidian/cache",
    ".trash/",
    f"{TEMP_PREFIX}*",
    f"/{MARKER}",
]


class Ignore:
    """``matches(path)`` for a folder-relative, ``/``-separated path."""

    def __init__(self, extra: list[str] | None = None) -> None:
        self.spec = pathspec.GitIgnoreSpec.from_lines([*DEFAULTS, *(extra or [])])

    @classmethod
    def for_folder(cls, root: Path) -> Ignore:
        try:
            lines = (root / IGNORE_FILE).read_text("utf-8").splitlines()
        except (FileNotFoundError, UnicodeDecodeError):
            lines = []
        return cls(lines)

    def matches(self, path: str) -> bool:
        return bool(self.spec.match_file(path))
