"""``python -m encryption_plugin`` through ``main(argv)``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from encryption_plugin import Keyring
from encryption_plugin.__main__ import main


def _keygen(capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["keygen", "notes", *extra]) == 0
    return capsys.readouterr().out.strip()


def test_keygen_and_fingerprint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _keygen(capsys)
    assert text.startswith("ep1k:notes:")
    key_file = tmp_path / "notes.key"
    key_file.write_text(text + "\n")
    assert main(["fingerprint", "--key-file", str(key_file)]) == 0
    out = capsys.readouterr().out
    assert f"fingerprint: {Keyring.from_export(text).fingerprint()}" in out
    assert "app_id: notes" in out
    assert text.split(":")[2] not in out  # the secret is not printed


def test_export_converts_both_ways(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    b32 = _keygen(capsys, "--base32")
    monkeypatch.setattr("sys.stdin", io.StringIO(b32))
    assert main(["export"]) == 0
    text = capsys.readouterr().out.strip()
    assert Keyring.from_export(text).export_base32() == b32
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert main(["export", "--base32"]) == 0
    assert capsys.readouterr().out.strip() == b32


def test_qr_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "k"
    key_file.write_text(_keygen(capsys))
    assert main(["qr", "--key-file", str(key_file)]) == 0
    assert "\u2588" in capsys.readouterr().out
    png, svg = tmp_path / "k.png", tmp_path / "k.svg"
    assert main(["qr", "--key-file", str(key_file), "--png", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")
    assert main(["qr", "--key-file", str(key_file), "--svg", str(svg)]) == 0
    assert "<svg" in svg.read_text()


def test_bad_key_is_an_error_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad"
    bad.write_text("ep1k:notes:AAAA")
    assert main(["fingerprint", "--key-file", str(bad)]) == 1
    assert capsys.readouterr().err.startswith("error: export:")
    assert main(["fingerprint", "--key-file", str(tmp_path / "missing")]) == 1
    assert main(["keygen", "Bad App"]) == 1


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
