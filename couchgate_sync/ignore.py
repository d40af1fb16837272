"""Which paths are synced: ``.couchgateignore`` in gitignore syntax (``pathspec``) plus defaults.

The defaults keep out what is a device's own business (version-control data, editor swap and
backup files, Finder and Explorer litter, Obsidian's per-device workspace layout) and this
client's own temporary files and folder marker.
"""

from __future__ import annotations

from pathlib import Path

import pathspec

from . import config
from .notes import normalize

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
    r"\#*#",  # Emacs autosave; unescaped, a leading # makes the line a comment
    ".obsidian/workspace*.json",
    ".obsidian/cache",
    ".trash/",
    f"{TEMP_PREFIX}*",
    f"/{MARKER}",
]


class Ignore:
    """``matches(path)`` for a folder-relative, ``/``-separated path.

    ``own``: the client's own directories (settings, credentials, local store and state) when
    they are inside the folder (``COUCHGATE_SYNC_HOME`` there, or ``join SERVER ~``): never
    synced, whatever the ignore file says, so the credentials never reach the server as a note
    and the state never uploads itself.
    """

    def __init__(self, extra: list[str] | None = None, own: tuple[str, ...] = ()) -> None:
        self.spec = pathspec.GitIgnoreSpec.from_lines([*DEFAULTS, *(extra or [])])
        self.own = own

    @classmethod
    def for_folder(cls, root: Path) -> Ignore:
        try:
            lines = (root / IGNORE_FILE).read_text("utf-8").splitlines()
        except (FileNotFoundError, UnicodeDecodeError):
            lines = []
        return cls(lines, own_inside(root))

    def matches(self, path: str) -> bool:
        bare = path.rstrip("/")
        if any(bare == own or bare.startswith(own + "/") for own in self.own):
            return True
        return bool(self.spec.match_file(path))


def own_inside(root: Path) -> tuple[str, ...]:
    """The client's own directories inside ``root``, as folder-relative paths."""
    top = root.resolve()
    found = []
    for own in config.own_dirs():
        if top in own.resolve().parents:
            found.append(normalize(own.resolve().relative_to(top).as_posix()))
    return tuple(found)
