"""The demo's committed browser bundle matches its sources: ``gateway/demo/static/vendor/
MANIFEST.json`` (written by ``npm run build:demo``) names the sha256 of every input and output.

A change to the plugin's sources without a rebuild fails here, so the served bundle never drifts
from the tested plugin; no Node is needed to check it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).parents[2]
MANIFEST = ROOT / "gateway" / "demo" / "static" / "vendor" / "MANIFEST.json"
REBUILD = "run `npm ci && npm run build:demo` in gateway/demo and commit static/vendor/"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_vendored_bundle_matches_its_sources() -> None:
    manifest = json.loads(MANIFEST.read_text())
    plugin_sources = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "encryption_plugin" / "js" / "src").glob("*.js")
    }
    assert plugin_sources <= set(manifest["inputs"]), f"new plugin source: {REBUILD}"
    for rel, digest in {**manifest["inputs"], **manifest["outputs"]}.items():
        assert _sha256(ROOT / rel) == digest, f"{rel} changed since the bundle was built: {REBUILD}"


def test_demo_page_uses_only_vendored_scripts() -> None:
    page = (ROOT / "gateway" / "demo" / "static" / "index.html").read_text()
    assert "/demo/static/vendor/pouchdb.min.js" in page
    assert "http://" not in page and "https://" not in page  # nothing from another origin
