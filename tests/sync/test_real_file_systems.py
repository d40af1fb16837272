"""Names a real file system refuses, and a real case-insensitive folder (NTFS through FUSE).

The failed-item tests elsewhere meet names ext4 refuses (too long, NUL) and fake a
case-insensitive folder with ``COUCHGATE_SYNC_CASE_INSENSITIVE=1``; here a device's folder is on
a real NTFS file system (tests/sync/ntfs.py) that answers EINVAL for Windows' names and, mounted
with ``ignore_case``, cannot tell ``Notes`` from ``notes``. The other device is on ext4, which
holds every one of those names. Decided on the device alone: one upstream will do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from couchgate_sync import folder
from tests.harness import GatewayHarness
from tests.sync.devices import FolderDevice, settle
from tests.sync.ntfs import ntfs_folder

embedded_only = pytest.mark.parametrize("gateway_upstream", ["embedded"], indirect=True)

# Names Windows refuses (and so does ntfs-3g with windows_names), each as A saves it on ext4.
REFUSED = [
    "CON",
    "con.txt",
    "Aux.md",
    "trail.",
    "space .md ",
    "a:b.md",
    "why?.md",
    "star*.md",
    "pipe|.md",
    'say".md',
    "lt<gt>.md",
    "dot dir./inside.md",
    "back\\slash.md",
]
SKIPPED = "skipped a document this device cannot write"


@pytest.fixture
def windows_folder(tmp_path: Path) -> Iterator[Path]:
    """A real NTFS folder refusing Windows' names (case-sensitive, as ntfs-3g is by default)."""
    with ntfs_folder(tmp_path / "ntfs", ignore_case=False) as mnt:
        yield mnt


@pytest.fixture
def case_insensitive_folder(tmp_path: Path) -> Iterator[Path]:
    """A real NTFS folder that cannot tell names apart by case (lowntfs-3g ``ignore_case``)."""
    with ntfs_folder(tmp_path / "ntfs", ignore_case=True) as mnt:
        yield mnt


async def _pair(
    gateway: GatewayHarness, tmp_path: Path, b_folder: Path
) -> tuple[FolderDevice, FolderDevice]:
    a = FolderDevice(tmp_path / "home-a", tmp_path / "Notes A", "laptop", gateway.url)
    b = FolderDevice(tmp_path / "home-b", b_folder, "windows", gateway.url)
    _, code = await gateway.enrollment_code()
    await a.join("--code", code)
    await b.join("--pair", await a.pairing_link())
    return a, b


@embedded_only
async def test_names_a_real_file_system_refuses_are_failed_items_and_the_rest_arrives(
    sealed_gateway: GatewayHarness, tmp_path: Path, windows_folder: Path
) -> None:
    a, b = await _pair(sealed_gateway, tmp_path, windows_folder / "Notes")
    saved = {name: f"refused {i}\n".encode() for i, name in enumerate(REFUSED)}
    saved |= {"fine.md": b"fine\n", "sub/also fine.md": b"also\n", "CONSOLE.md": b"not CON\n"}
    for name, data in saved.items():
        a.write(name, data)
    err_a = await a.sync()
    assert a.files() == saved

    code, _, err = await b.cli("sync", str(b.folder))
    assert code == 0 and "Traceback" not in err, err
    assert err.count(SKIPPED) == len(REFUSED), err  # one warning each
    assert "a name this file system refuses" in err
    logs = err + err_a.replace("(CON, NUL, COM1…)", "")  # A's warning names the rule, not files
    for name in REFUSED:  # no name in any log line, of either device
        assert name.rstrip(". ") not in logs, (name, logs)
    assert b.files() == {k: v for k, v in saved.items() if k not in REFUSED}
    _, report, _ = await b.cli("status", str(b.folder))
    assert f"failed:     {len(REFUSED)} document(s) this device cannot write" in report, report
    for name in REFUSED:
        assert f"  {name}  (a name this file system refuses; since" in report, report

    # Again, from both sides: nothing renamed or deleted anywhere, no warning said twice.
    await settle(a, b)
    err = await b.sync()
    assert SKIPPED not in err
    assert a.files() == saved
    assert b.files() == {k: v for k, v in saved.items() if k not in REFUSED}
    _, report, _ = await a.cli("status", str(a.folder))
    assert "failed:" not in report, report


def _folded(files: dict[str, bytes]) -> dict[str, bytes]:
    return {path.casefold(): data for path, data in files.items()}


def test_the_client_finds_out_by_itself_how_a_folder_takes_names(
    tmp_path: Path, case_insensitive_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No setting: a probe file says it (ext4 and plain ntfs-3g tell case apart; lowntfs-3g's
    ignore_case does not, and lists names in lower case), and leaves nothing behind."""
    monkeypatch.delenv("COUCHGATE_SYNC_CASE_INSENSITIVE", raising=False)
    assert folder.probe_names(case_insensitive_folder) == folder.Names(True, lists_case=False)
    assert folder.probe_names(tmp_path) == folder.SENSITIVE
    with ntfs_folder(tmp_path / "plain", ignore_case=False) as plain:
        assert folder.probe_names(plain) == folder.SENSITIVE
        assert os.listdir(plain) == []
    assert os.listdir(case_insensitive_folder) == []


@embedded_only
async def test_case_clashes_on_a_real_case_insensitive_folder_are_failed_items(
    sealed_gateway: GatewayHarness,
    tmp_path: Path,
    case_insensitive_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file case clash and a folder case clash, made on ext4, reach a device whose folder
    cannot tell them apart (found out by itself: no setting): failed items, never merged, never
    renamed (on that folder every name is listed in lower case, which must not read as renames
    either); applied once the other device resolves them."""
    monkeypatch.delenv("COUCHGATE_SYNC_CASE_INSENSITIVE", raising=False)
    a, b = await _pair(sealed_gateway, tmp_path, case_insensitive_folder / "Notes")
    saved = {
        "Readme.md": b"the first\n",
        "README.md": b"the second\n",
        "Notes/a.md": b"in Notes\n",
        "notes/b.md": b"in notes\n",
        "Other/c.md": b"other\n",
    }
    for name, data in saved.items():
        a.write(name, data)
    await a.sync()

    code, _, err = await b.cli("sync", str(b.folder))
    assert code == 0 and "Traceback" not in err, err
    assert err.count(f"{SKIPPED} (another file's name differs from it only in case") == 1, err
    assert err.count(f"{SKIPPED} (one of its folders differs from another folder") == 1, err
    assert not any(name.split("/")[-1] in err for name in saved), err  # no names
    _, report, _ = await b.cli("status", str(b.folder))
    assert "failed:     2 document(s) this device cannot write" in report, report
    assert "pending:    0 local change(s)" in report, report  # lower-case listing: no changes
    failed = {p for p in saved if f"\n  {p}  (" in report}
    assert len(failed) == 2 and len(failed & {"Readme.md", "README.md"}) == 1, report
    written = {p: d for p, d in saved.items() if p not in failed}
    assert _folded(b.files()) == _folded(written)  # one of each pair, never merged or overwritten

    # Synced again both ways: nothing renamed (to lower case or otherwise) or deleted anywhere.
    await settle(a, b)
    assert a.files() == saved
    assert _folded(b.files()) == _folded(written)
    assert "Other" in os.listdir(a.folder) and "notes" in os.listdir(a.folder)

    # Resolved on A (the failed ones renamed apart): cleared on B and written there.
    (file_clash,) = failed & {"Readme.md", "README.md"}
    (dir_clash,) = failed - {file_clash}
    (other_dir,) = {p.split("/")[0] for p in written if p.casefold().startswith("notes/")}
    (a.folder / file_clash).rename(a.folder / "Readme 2.md")
    (a.folder / dir_clash).rename(a.folder / other_dir / dir_clash.split("/")[1])
    (a.folder / dir_clash).parent.rmdir()  # else its folder, now empty, is the next clash
    await settle(a, b)
    assert len(a.files()) == len(saved)
    assert _folded(b.files()) == _folded(a.files())
    _, report, _ = await b.cli("status", str(b.folder))
    assert "failed:" not in report and "pending:    0 local change(s)" in report, report
    await settle(b, a, rounds=1)
    assert _folded(b.files()) == _folded(a.files()) and len(a.files()) == len(saved)
