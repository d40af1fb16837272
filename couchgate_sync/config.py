"""Where a device keeps what is not in the folder: its settings and its local state.

Settings of a synced folder (server, app, device name; no secret) live in the user's config
directory, state (the local store and ``state.sqlite3``) in the user's data directory, both
named by a hash of the folder's absolute path, so nothing of the client sits inside the folder.
``COUCHGATE_SYNC_HOME`` puts both under one directory instead (tests, portable installs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

from . import private

APP_DIRS = "couchgate-sync"


def config_dir() -> Path:
    home = os.environ.get("COUCHGATE_SYNC_HOME")
    return Path(home) / "config" if home else Path(platformdirs.user_config_dir(APP_DIRS))


def data_dir() -> Path:
    home = os.environ.get("COUCHGATE_SYNC_HOME")
    return Path(home) / "data" if home else Path(platformdirs.user_data_dir(APP_DIRS))


def own_dirs() -> list[Path]:
    """The directories that are the client's alone: ``COUCHGATE_SYNC_HOME`` whole, else its
    config and data directories."""
    home = os.environ.get("COUCHGATE_SYNC_HOME")
    return [Path(home)] if home else [config_dir(), data_dir()]


def folder_key(folder: Path) -> str:
    return hashlib.sha256(str(folder.resolve()).encode("utf-8")).hexdigest()[:24]


@dataclass
class FolderConfig:
    folder: str
    server: str
    app: str
    device: str
    device_id: str
    user: str
    keep_days: int = 30  # how long replaced and deleted versions are kept on the server
    # A scan deleting more than this share of the synced files and more than this many holds
    # those deletions until `deletions confirm` or `deletions undo` (see deletions.py).
    deletion_guard_share: float = 0.5
    deletion_guard_files: int = 20

    @property
    def key(self) -> str:
        return folder_key(Path(self.folder))

    @property
    def state_dir(self) -> Path:
        return data_dir() / self.key


class NotJoined(Exception):
    def __init__(self, folder: Path) -> None:
        super().__init__(
            f"{folder} is not a synced folder on this device: run `couchgate-sync join` first"
        )


def _config_path(folder: Path) -> Path:
    return config_dir() / "folders" / f"{folder_key(folder)}.json"


def write_replacing(path: Path, text: str, mode: int = 0o666) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``, so a crash
    leaves the old file or the new one, never half of one (``mode``: before the umask; the
    settings, credentials and share keys are written so)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def save(cfg: FolderConfig) -> None:
    path = _config_path(Path(cfg.folder))
    private.directory(path.parent, config_dir())
    write_replacing(path, json.dumps(asdict(cfg), indent=2), private.FILE_MODE)


def load(folder: Path) -> FolderConfig:
    """The settings of the synced folder that is, or holds, ``folder`` (as git finds its root)."""
    for candidate in (folder, *folder.parents):
        path = _config_path(candidate)
        try:
            raw = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            continue
        private.file(path, config_dir())  # one made before they were private is tightened
        return FolderConfig(**raw)
    raise NotJoined(folder)


def joined_folders() -> list[Path]:
    """Every folder this device syncs."""
    found = []
    for path in (config_dir() / "folders").glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            found.append(Path(json.loads(path.read_text("utf-8"))["folder"]))
    return found


def forget(folder: Path) -> None:
    _config_path(folder).unlink(missing_ok=True)
