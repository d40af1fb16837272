"""The committed browser bundles match their sources: each page's ``static/vendor/MANIFEST.json``
(written by its ``npm run build:…``, see gateway/vendor_build.mjs) names the sha256 of every input
and output.

A change to the plugin's sources without a rebuild fails here, so the demo and the share page
never serve code other than the tested plugin's; no Node is needed to check it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(("page", "script"), [("demo", "build:demo"), ("shares", "build:share")])
def test_vendored_bundle_matches_its_sources(page: str, script: str) -> None:
    manifest = json.loads((ROOT / "gateway" / page / "static/vendor/MANIFEST.json").read_text())
    rebuild = f"run `npm ci && npm run {script}` in gateway/{page} and commit static/vendor/"
    plugin_sources = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "encryption_plugin" / "js" / "src").glob("*.js")
    }
    assert plugin_sources <= set(manifest["inputs"]), f"new plugin source: {rebuild}"
    for rel, digest in {**manifest["inputs"], **manifest["outputs"]}.items():
        digest_now = hashlib.sha256((ROOT / rel).read_bytes()).hexdigest()
        assert digest_now == digest, f"{rel} changed since the bundle was built: {rebuild}"


def test_demo_page_uses_only_vendored_scripts() -> None:
    page = (ROOT / "gateway" / "demo" / "static" / "index.html").read_text()
    assert "/demo/static/vendor/pouchdb.min.js" in page
    assert "http://" not in page and "https://" not in page  # nothing from another origin
