"""Where the token and key are kept: an OS keyring when one is there, else a 0600 file."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import pytest

from couchgate_sync import credentials


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring backend as an OS one behaves (priority above zero), in memory."""

    priority = 5

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("COUCHGATE_SYNC_HOME", str(tmp_path))
    monkeypatch.delenv("COUCHGATE_SYNC_KEYRING", raising=False)
    before = keyring.get_keyring()
    yield tmp_path
    keyring.set_keyring(before)


def test_an_os_keyring_is_used_when_there_is_one(home: Path) -> None:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    creds = credentials.Credentials("tok", "ep1k-key")
    assert credentials.store("acct", creds) == "the OS keyring"
    assert not (home / "config" / "credentials").exists()
    assert credentials.load("acct") == creds
    assert ("couchgate-sync", "acct") in backend.items
    credentials.delete("acct")
    assert credentials.load("acct") is None


def test_without_one_a_file_only_the_user_can_read(home: Path) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    creds = credentials.Credentials("tok", "ep1k-key")
    where = credentials.store("acct", creds)
    path = Path(where)
    assert path.parent == home / "config" / "credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert credentials.load("acct") == creds
