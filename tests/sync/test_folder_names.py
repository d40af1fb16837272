"""The folder side of empty folders and file names, on a real file system: which directories
count as empty, NFD names found under their NFC path, the case-sensitivity probe."""

from __future__ import annotations

import os
import sys
import unicodedata
from pathlib import Path

import pytest

from couchgate_sync import folder
from couchgate_sync.ignore import Ignore


def test_only_directories_with_nothing_synced_in_them_are_empty(tmp_path: Path) -> None:
    for made in ("a/b/c", "a/d", "lone", "holds/.git", "ignored/out", "with/file", "real"):
        (tmp_path / made).mkdir(parents=True)
    (tmp_path / "with/file/n.md").write_text("n")
    (tmp_path / "lone/.DS_Store").write_text("ignored litter does not count")
    (tmp_path / "linked").symlink_to(tmp_path / "real", target_is_directory=True)
    listing = folder.walk(tmp_path, Ignore(["ignored/"]))
    assert listing.empty_dirs == {"a/b/c", "a/d", "lone", "holds", "real"}
    assert set(listing.files) == {"with/file/n.md"}


def test_the_ascii_characters_with_another_spelling_are_all_known() -> None:
    """locate skips looking for another spelling of an ASCII name without these: it must be
    every ASCII character that is the NFC form of some other character."""
    images = set()
    for code in range(0x80, sys.maxunicode + 1):
        nfc = unicodedata.normalize("NFC", chr(code))
        images |= {c for c in nfc if c.isascii()}
    assert images == set(folder.ASCII_NFC_IMAGES)


def test_a_kelvin_sign_name_is_found_under_its_ascii_path(tmp_path: Path) -> None:
    (tmp_path / "\u212aafka.md").write_bytes(b"k")  # KELVIN SIGN: NFC makes it a plain K
    assert set(folder.scan(tmp_path, Ignore())) == {"Kafka.md"}
    assert folder.read(tmp_path, "Kafka.md") == b"k"
    folder.write_atomic(tmp_path, "Kafka.md", b"written", None)
    assert os.listdir(tmp_path) == ["\u212aafka.md"]


def test_an_nfd_name_is_found_under_its_nfc_path(tmp_path: Path) -> None:
    nfd = unicodedata.normalize("NFD", "Résumé/café.md")
    (tmp_path / nfd).parent.mkdir()
    (tmp_path / nfd).write_bytes(b"x")
    nfc = unicodedata.normalize("NFC", nfd)
    assert set(folder.scan(tmp_path, Ignore())) == {nfc}
    assert folder.read(tmp_path, nfc) == b"x"
    folder.write_atomic(tmp_path, nfc, b"y", None)
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.md")] == [nfd]
    assert (tmp_path / nfd).read_bytes() == b"y"
    folder.remove(tmp_path, nfc)
    assert os.listdir(tmp_path) == []


def test_removing_a_file_keeps_a_synced_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "kept/inner").mkdir(parents=True)
    (tmp_path / "kept/inner/n.md").write_text("n")
    folder.remove(tmp_path, "kept/inner/n.md", keep={"kept/inner"})
    assert (tmp_path / "kept/inner").is_dir()
    folder.remove_dir(tmp_path, "kept/inner")
    assert os.listdir(tmp_path) == []


def test_the_case_probe_reads_the_file_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COUCHGATE_SYNC_CASE_INSENSITIVE", raising=False)
    upper = tmp_path / "PROBE"
    upper.touch()
    sensitive = not (tmp_path / "probe").exists()  # what this file system is, asked directly
    upper.unlink()
    assert folder.case_insensitive(tmp_path) is not sensitive
    assert os.listdir(tmp_path) == []  # the probe leaves nothing behind
    monkeypatch.setenv("COUCHGATE_SYNC_CASE_INSENSITIVE", "1")
    assert folder.case_insensitive(tmp_path) is True
    monkeypatch.setenv("COUCHGATE_SYNC_CASE_INSENSITIVE", "0")
    assert folder.case_insensitive(tmp_path) is False


def test_a_directory_holding_only_file_manager_litter_goes_with_its_last_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "Trip/day").mkdir(parents=True)
    (tmp_path / "Trip/day/n.md").write_text("n")
    (tmp_path / "Trip/day/.DS_Store").write_bytes(b"\0")
    (tmp_path / "Trip/.DS_Store").write_bytes(b"\0")
    (tmp_path / "Kept").mkdir()
    (tmp_path / "Kept/own.txt").write_text("not litter")
    folder.remove(tmp_path, "Trip/day/n.md")
    assert os.listdir(tmp_path) == ["Kept"]  # else the next scan would see an empty folder


def test_a_listing_that_lost_case_is_read_in_the_recorded_names() -> None:
    """lowntfs-3g's ignore_case lists every name in lower case: recorded files keep their
    names, new files in a recorded folder take its spelling, the rest stays as listed."""
    listed = folder.Listing(
        {p: folder.Seen(p, 1, 1) for p in ("notes/a.md", "notes/new.md", "readme.md", "x/y.md")},
        frozenset({"notes/empty"}),
        frozenset({"notes", "notes/empty", "x"}),
    )
    found = folder.as_recorded(listed, ["Notes/a.md", "Readme.md", "gone.md"], ["Notes/Empty"])
    assert found.files == {
        p: folder.Seen(p, 1, 1) for p in ("Notes/a.md", "Notes/new.md", "Readme.md", "x/y.md")
    }
    assert found.empty_dirs == {"Notes/Empty"} and found.dirs == {"Notes", "Notes/Empty", "x"}
