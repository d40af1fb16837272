"""The device token and the app key: in the OS keyring when there is a real one, else a file
only the user can read (0600) in the config directory; never in the synced folder.

``COUCHGATE_SYNC_KEYRING=file`` forces the file (headless machines, tests).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import keyring
import keyring.backends.fail
from keyring.errors import KeyringError

from . import private
from .config import config_dir, write_replacing

SERVICE = "couchgate-sync"


@dataclass(frozen=True)
class Credentials:
    token: str
    key: str  # the keyring export string (K_root): whoever holds it reads every note


class Gone(Exception):
    """The credentials were removed while ``run`` used them: it stops (the token it holds may
    still work, but the person took this device's sign-in away here)."""

    def __init__(self) -> None:
        super().__init__(
            "this device's credentials are gone (removed from the keyring or the credentials "
            "file): nothing more is synced; join again to sync"
        )


def _use_os_keyring() -> bool:
    if os.environ.get("COUCHGATE_SYNC_KEYRING") == "file":
        return False
    backend = keyring.get_keyring()
    if isinstance(backend, keyring.backends.fail.Keyring):
        return False
    priority = getattr(backend, "priority", 0)
    return isinstance(priority, int | float) and priority >= 1


def _file(account: str) -> Path:
    return config_dir() / "credentials" / f"{account}.json"


def where(account: str) -> str:
    """Where the credentials of ``account`` are kept, in words (for ``status``)."""
    if _use_os_keyring() and keyring.get_password(SERVICE, account) is not None:
        return "the OS keyring"
    return str(_file(account))


def store(account: str, creds: Credentials) -> str:
    text = json.dumps({"token": creds.token, "key": creds.key})
    if _use_os_keyring():
        try:
            keyring.set_password(SERVICE, account, text)
            return "the OS keyring"
        except KeyringError:
            pass
    path = _file(account)
    private.directory(path.parent, config_dir())
    write_replacing(path, text, private.FILE_MODE)
    return str(path)


def load(account: str) -> Credentials | None:
    text: str | None = None
    if _use_os_keyring():
        try:
            text = keyring.get_password(SERVICE, account)
        except KeyringError:
            text = None
    if text is None:
        try:
            text = _file(account).read_text("utf-8")
        except FileNotFoundError:
            return None
        private.file(_file(account), config_dir())  # one made before they were private
    raw = json.loads(text)
    return Credentials(str(raw["token"]), str(raw["key"]))


def delete(account: str) -> None:
    if _use_os_keyring():
        with contextlib.suppress(KeyringError):
            keyring.delete_password(SERVICE, account)
    _file(account).unlink(missing_ok=True)
