"""Running the store as its own process (``python -m couchlite``) for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.upstreams import _wait_until_up, free_port

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("pouchdb_driver.mjs")


@dataclass
class StoreProcess:
    proc: subprocess.Popen[bytes]
    url: str
    user: str
    password: str


def start_store(data_dir: Path, user: str = "admin", password: str = "pw") -> StoreProcess:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "couchlite",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--admin-user",
            user,
            "--admin-password",
            password,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url + "/_up")
    except RuntimeError:
        proc.kill()
        proc.wait()
        raise
    return StoreProcess(proc, url, user, password)


@contextlib.contextmanager
def running_store(data_dir: Path) -> Iterator[StoreProcess]:
    store = start_store(data_dir)
    try:
        yield store
    finally:
        store.proc.terminate()
        try:
            store.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            store.proc.kill()
            store.proc.wait()


def compact(
    data_dir: Path, timeout: float, env_data_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``couchgate store compact --data-dir data_dir`` in its own process, as an admin runs it
    (with ``COUCHGATE_DATA_DIR`` set to ``env_data_dir``, the flag's own directory by default)."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from gateway.cli import main; sys.exit(main(sys.argv[1:]))",
            "store",
            "compact",
            "--data-dir",
            str(data_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "COUCHGATE_DATA_DIR": str(env_data_dir or data_dir),
        },
        check=False,
    )
