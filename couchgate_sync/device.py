"""The device context: what every part of a sync works on, and nothing more.

A folder on this device is four things: the folder itself (``root``), the device's own
database (``local``: the sealed documents, as the server keeps them), the state file that says
which file is in step with which revision (``state``), and the app's keys (``keyring``). The
helpers (scan, apply, renames, folders, conflicts, chunk collection, history) receive this
context, or the narrower part of it they need, much as Syncthing's subsystems receive an
``fs.Filesystem`` rather than the model; none of them holds the cycle or its work sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from encryption_plugin import Keyring

from .localdb import LocalDb
from .state import State


@dataclass(frozen=True)
class DeviceContext:
    root: Path
    local: LocalDb
    state: State
    keyring: Keyring
