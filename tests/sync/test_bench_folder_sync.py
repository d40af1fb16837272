"""bench_folder_sync's ``--vs-syncthing`` mode, run for real on a tiny vault so CI exercises it:
the JSON line's shape (what the README's and issues' figures are read from), that every process
it started is gone when it exits, and the clear refusal when Syncthing is missing.

Runs only where ``syncthing`` is on PATH (CI installs Debian's package in .ci/run); the refusal
test runs everywhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTES = 50


def run_bench(
    tmp_path: Path, *args: str, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(REPO))
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "bench.bench_folder_sync", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def processes_under(root: Path) -> list[str]:
    """Command lines of live processes that name a path under ``root`` (the bench's temp
    directory, which every process it starts is given: homes and folders)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(root) in cmdline:
            found.append(cmdline)
    return found


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("syncthing") is None, reason="syncthing is not installed")
def test_vs_syncthing_reports_both_clients_side_by_side(tmp_path: Path) -> None:
    done = run_bench(
        tmp_path, "--notes", str(NOTES), "--edits", "3", "--no-pouch", "--vs-syncthing", "--json"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["notes"] == NOTES
    assert result["files_per_s"]["up"] > 0 and result["files_per_s"]["down"] > 0
    # A Python process holds more than 10 MB; an idle run's threads sleep, then wake.
    assert 10 < result["client_peak_rss_mb"] < 1000
    assert isinstance(result["idle_wakeups_over_5s"], int) and result["idle_wakeups_over_5s"] >= 0
    st = result["syncthing"]
    assert st["version"].startswith("v")
    assert st["watcher_delay_s"] == 1
    assert st["first_sync_s"] > 0
    assert st["files_per_s"] == pytest.approx(NOTES / st["first_sync_s"])
    assert st["scan_s"] is None or 0 <= st["scan_s"] <= st["first_sync_s"]
    latency = st["save_to_appear_s"]
    assert set(latency) == {"p50", "p99", "max"}
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert set(st["ratio"]) == {
        "files_per_s_up",
        "files_per_s_down",
        "files_per_s_end_to_end",
        "save_to_appear_p50",
        "save_to_appear_p99",
    }
    assert st["ratio"]["files_per_s_up"] == pytest.approx(
        result["files_per_s"]["up"] / st["files_per_s"]
    )
    assert all(value > 0 for value in st["ratio"].values())
    assert processes_under(tmp_path) == []


def test_vs_syncthing_without_syncthing_says_how_to_get_it(tmp_path: Path) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    done = run_bench(tmp_path, "--notes", "1", "--vs-syncthing", "--json", path=str(bare))
    assert done.returncode == 2
    assert "apt-get install syncthing" in done.stderr
    assert done.stdout == ""
