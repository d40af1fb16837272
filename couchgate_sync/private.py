"""The client's own directories 0700 and its files 0600, made so and tightened when opened.

``state.sqlite3`` lists every synced path with its SHA-256, the local store holds every sealed
note, the settings name the folder and the server: none of it is for the other users of the
machine. SQLite makes a database's ``-wal`` and ``-shm`` files with the database's own mode, so
a database file made 0600 before SQLite opens it keeps its companions private too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def directory(path: Path, top: Path) -> None:
    """Make ``path`` (and its parents); ``path`` and each of its parents up to the client's
    own ``top`` (included) become 0700. Parents above ``top`` are the user's: left as they are."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    for d in (path, *path.parents):
        if d != top and top not in d.parents:
            break
        os.chmod(d, DIR_MODE)


def database(path: Path, top: Path) -> None:
    """Before SQLite opens ``path``: its directory private with every file in it (the other
    database, their companions, the lock), and the file made (empty: SQLite takes it as a new
    database) 0600."""
    directory(path.parent, top)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    for entry in os.scandir(path.parent):
        if entry.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(entry.path, FILE_MODE)


def file(path: Path, top: Path) -> None:
    """An existing file of the client's, and its directories up to ``top``, tightened."""
    directory(path.parent, top)
    os.chmod(path, FILE_MODE)


def opener(path: str, flags: int) -> int:
    """For ``open(..., opener=private.opener)``: a file made is made 0600."""
    fd = os.open(path, flags, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd
