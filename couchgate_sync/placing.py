"""Where a synced folder is: found from anywhere inside it (as git finds its repository), never
inside or around another synced folder, and a folder ``join`` made taken back if it fails.

A folder nested in another would be synced twice, by two devices of two states that each take
the other's edits for their own; so ``join`` refuses it and says which folder is in the way.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from . import config


class Overlaps(Exception):
    """``join`` was asked for a folder inside, or holding, a folder this device syncs."""

    def __init__(self, folder: Path, joined: Path) -> None:
        where = "is inside" if joined in folder.parents else "holds"
        super().__init__(
            f"{folder} {where} the synced folder {joined}: a folder is synced by one join only "
            "(pick a folder outside it)"
        )


def refuse_overlap(folder: Path) -> None:
    """Raise :class:`Overlaps` when ``folder`` is inside or holds another synced folder (the
    folder itself may be joined again)."""
    for joined in config.joined_folders():
        if joined != folder and (joined in folder.parents or folder in joined.parents):
            raise Overlaps(folder, joined)


def make(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones made, deepest first."""
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return made


def take_back(made: list[Path]) -> None:
    """Remove the folders :func:`make` made, as long as nothing was put in them."""
    for path in made:
        with contextlib.suppress(OSError):  # not empty (or gone): it stays as it is
            os.rmdir(path)
