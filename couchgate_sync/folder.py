"""The folder on disk: scanning it, and writing into it atomically and only inside it.

A remote change lands as a temporary file in the same directory, fsynced, then ``os.replace``d
over the target: a reader sees the old note or the new one, never half of one. Paths from the
server are checked to stay inside the folder (a path is data from another device, and a broken
or hostile one must not write elsewhere).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from .ignore import TEMP_PREFIX, Ignore
from .notes import normalize


@dataclass(frozen=True)
class Seen:
    """A file as the scan found it (the hash only when asked for)."""

    path: str
    size: int
    mtime_ns: int


class UnsafePath(ValueError):
    pass


def scan(root: Path, ignore: Ignore) -> dict[str, Seen]:
    """Every synced regular file under ``root``, by normalized relative path.

    Removes this client's temporary files on the way: one found here is what a write cut short
    (kill -9, power loss) left behind, since no write runs while the folder is scanned.
    """
    found: dict[str, Seen] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else normalize(rel_dir) + "/"
        dirnames[:] = [d for d in dirnames if not ignore.matches(rel_dir + d + "/")]
        for name in filenames:
            if name.startswith(TEMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(dirpath, name))
                continue
            rel = rel_dir + normalize(name)
            if ignore.matches(rel):
                continue
            try:
                st = os.stat(os.path.join(dirpath, name), follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not _is_regular(st.st_mode):
                continue
            found[rel] = Seen(rel, st.st_size, st.st_mtime_ns)
    return found


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def target(root: Path, rel: str) -> Path:
    """``root / rel``, refusing anything that would leave ``root``."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise UnsafePath("path leaves the folder")
    full = root.joinpath(*parts)
    if not full.resolve().is_relative_to(root.resolve()):
        raise UnsafePath("path leaves the folder")
    return full


def read(root: Path, rel: str) -> bytes | None:
    try:
        return target(root, rel).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(root: Path, rel: str, data: bytes, mtime_ms: int | None) -> Seen:
    """Write ``data`` to ``rel`` via a temporary file and ``os.replace``; the file as written."""
    full = target(root, rel)
    full.parent.mkdir(parents=True, exist_ok=True)
    tmp = full.parent / f"{TEMP_PREFIX}{secrets.token_hex(6)}"
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if mtime_ms:
            os.utime(tmp, ns=(mtime_ms * 1_000_000, mtime_ms * 1_000_000))
        os.replace(tmp, full)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    st = full.stat()
    return Seen(rel, st.st_size, st.st_mtime_ns)


def remove(root: Path, rel: str) -> None:
    """Delete a file, then the directories it leaves empty (up to the folder)."""
    full = target(root, rel)
    with contextlib.suppress(FileNotFoundError):
        full.unlink()
    parent = full.parent
    root_resolved = root.resolve()
    while parent.resolve() != root_resolved:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent


def stat_of(root: Path, rel: str) -> Seen | None:
    try:
        st = target(root, rel).stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return Seen(rel, st.st_size, st.st_mtime_ns)
