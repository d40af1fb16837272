"""Run the JavaScript plugin's own tests (vectors + real PouchDB) inside the pytest run.

Needs ``npm ci`` in encryption_plugin/js and in tests/js (for pouchdb-server); CI does both, so
a missing install is a failure, not a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "encryption_plugin" / "js"


@pytest.mark.slow
def test_node_suite() -> None:
    node = shutil.which("node")
    assert node, "node is not on PATH (Node 20 is required)"
    assert (JS_DIR / "node_modules").is_dir(), "run `npm ci` in encryption_plugin/js"
    assert (ROOT / "tests" / "js" / "node_modules" / "pouchdb-server").is_dir(), (
        "run `npm ci` in tests/js"
    )
    result = subprocess.run(
        # spec ends with a list of the failing tests, so the tail below names them.
        [node, "--test", "--test-reporter=spec", "test/"],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
