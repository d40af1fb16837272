"""Real NTFS folders through FUSE (ntfs-3g), for the tests of names a file system refuses.

This machine's file systems (ext4, tmpfs) hold any name and tell case apart; the devices the
client must not fail on (Windows, macOS) do neither. ntfs-3g mounts an NTFS image, a sparse
file in the test's tmp_path, as a user-space file system, with no block device and no root
mount: ``windows_names`` makes it refuse what Windows refuses (CON, trailing dots and spaces,
``<>:"\\|?*``) with EINVAL, and lowntfs-3g's ``ignore_case`` makes it case-insensitive. Where
FUSE or ntfs-3g is missing, the tests that need it skip, saying why (their twins, which fake
those answers on ext4, run everywhere).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_TOOLS_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
IMAGE_BYTES = 32 * 1024 * 1024  # sparse: a few MB on disk


def _tool(name: str) -> str:
    found = shutil.which(name, path=_TOOLS_PATH)
    if found is None:
        pytest.skip(f"{name} is not installed (Debian: ntfs-3g fuse3), so no NTFS folder here")
    return found


@contextmanager
def ntfs_folder(where: Path, *, ignore_case: bool) -> Iterator[Path]:
    """An empty NTFS file system mounted at ``where/mnt``, refusing Windows' names; with
    ``ignore_case``, case-insensitive too (lowntfs-3g: it lists every name in lower case).
    Always unmounted on the way out, a failed test's included."""
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse on this machine, so no NTFS folder through FUSE")
    mkntfs = _tool("mkntfs")
    mount = _tool("lowntfs-3g" if ignore_case else "ntfs-3g")
    unmount = _tool("fusermount3")
    where.mkdir(parents=True, exist_ok=True)
    image, mnt = where / "ntfs.img", where / "mnt"
    with image.open("wb") as f:
        f.truncate(IMAGE_BYTES)
    made = subprocess.run(
        [mkntfs, "-F", "-Q", "-q", str(image)], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        pytest.skip(f"mkntfs could not make an NTFS image here: {made.stderr.strip()}")
    mnt.mkdir()
    options = "windows_names,ignore_case" if ignore_case else "windows_names"
    mounted = subprocess.run(
        [mount, "-o", options, str(image), str(mnt)], capture_output=True, text=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"{Path(mount).name} could not mount through FUSE here: {mounted.stderr}")
    try:
        yield mnt
    finally:
        done = subprocess.run([unmount, "-u", str(mnt)], capture_output=True, check=False)
        if done.returncode != 0:  # still busy (a process killed mid-write): detach it lazily
            subprocess.run([unmount, "-u", "-z", str(mnt)], capture_output=True, check=False)
