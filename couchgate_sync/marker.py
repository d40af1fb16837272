"""The folder marker: a small file that says "this directory is the synced folder".

An empty directory where the folder was (the folder moved away and an empty one made in its
place, the empty mount point of an unplugged drive) looks to a scan exactly like every file
deleted by hand, and would delete the vault on every device. Syncthing's answer is a marker
(``.stfolder``); this is ours. ``join`` writes ``.couchgate-folder`` at the folder's top; it
holds a keyed id of the app (``id_for``: tied to the vault's key, so a folder of another vault
does not pass; it says nothing and is no secret). It is ignored by the scan, so it never syncs.

Every cycle checks it first. Without it (or with another vault's), nothing is recorded, pulled
into the folder or deleted anywhere: the cycle raises :class:`FolderMarkerMissing`, which
``sync`` reports with exit 1 and ``run`` treats as an error state. A folder joined before
markers existed gets one at its next cycle, as long as it still holds some of its synced
files (or has none yet): an existing vault keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from encryption_plugin import Keyring, id_for

from .device import DeviceContext
from .ignore import MARKER, TEMP_PREFIX

_HEADER = "couchgate-sync folder marker: keep this file (without it nothing syncs here)\n"


class FolderMarkerMissing(Exception):
    """The folder has no marker (or another vault's): nothing was changed anywhere."""

    def __init__(self, root: Path, other: bool = False) -> None:
        what = "belongs to another vault" if other else "is missing"
        super().__init__(
            f"folder marker missing: {root / MARKER} {what}, so this may not be the synced "
            "folder (moved away and replaced, or its drive unplugged?); nothing was changed. "
            "Put the folder back (with its marker) and sync again"
        )


def marker_id(keyring: Keyring) -> str:
    return id_for("\0couchgate-sync folder marker", keyring)


def write(root: Path, keyring: Keyring) -> None:
    """Make the marker (``join``, and the migration of a folder joined before markers)."""
    path = root / MARKER
    tmp = root / f"{TEMP_PREFIX}marker"
    tmp.write_text(_HEADER + marker_id(keyring) + "\n", "utf-8")
    os.replace(tmp, path)


def _found(root: Path) -> str | None:
    """The id in the folder's marker, "" for a marker without one, None for no marker."""
    try:
        lines = (root / MARKER).read_text("utf-8").splitlines()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    return lines[1].strip() if len(lines) > 1 else ""


def _holds_synced_files(context: DeviceContext) -> bool:
    """Whether the folder still holds any file the state file says is synced (or none is)."""
    rows = context.state.files()
    if not rows:
        return True
    for path in rows:
        with contextlib.suppress(OSError, ValueError):
            if (context.root / path).is_file():
                return True
    return False


def _check(context: DeviceContext) -> None:
    root = context.root
    if not root.is_dir():
        return  # a missing folder is the scan's to report
    found = _found(root)
    if found == marker_id(context.keyring):
        return
    if found is None and _holds_synced_files(context):
        write(root, context.keyring)  # joined before markers existed: the folder is intact
        return
    raise FolderMarkerMissing(root, other=found is not None)


async def check(context: DeviceContext) -> None:
    """Raise :class:`FolderMarkerMissing` unless the folder is the one this device synced."""
    await asyncio.to_thread(_check, context)


async def status_lines(context: DeviceContext) -> list[str]:
    """``status``'s line when the folder's marker is missing (none when all is well)."""
    root = context.root
    if not await asyncio.to_thread(root.is_dir):
        return []
    if await asyncio.to_thread(_found, root) == marker_id(context.keyring):
        return []
    return [f"marker:     {root / MARKER} is missing: nothing syncs here until the folder is back"]
