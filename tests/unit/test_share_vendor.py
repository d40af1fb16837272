"""The share page's committed bundle matches its sources (``gateway/shares/static/vendor/
MANIFEST.json``, written by ``npm run build:share``), so the page never opens notes with code
other than the tested plugin's; no Node is needed to check it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).parents[2]
MANIFEST = ROOT / "gateway" / "shares" / "static" / "vendor" / "MANIFEST.json"
REBUILD = "run `npm ci && npm run build:share` in gateway/shares and commit static/vendor/"


def test_share_bundle_matches_its_sources() -> None:
    manifest = json.loads(MANIFEST.read_text())
    plugin_sources = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "encryption_plugin" / "js" / "src").glob("*.js")
    }
    assert plugin_sources <= set(manifest["inputs"]), f"new plugin source: {REBUILD}"
    for rel, digest in {**manifest["inputs"], **manifest["outputs"]}.items():
        digest_now = hashlib.sha256((ROOT / rel).read_bytes()).hexdigest()
        assert digest_now == digest, f"{rel} changed since the bundle was built: {REBUILD}"
