"""Seal/open throughput of the ep1 envelope vs raw XChaCha20-Poly1305 on the same bytes.

Runs the Python measurements, then ``bench_crypto.mjs`` under Node, and prints both side by side
as ratios (ep1 ops/s divided by raw AEAD ops/s: 1.0 would mean the envelope costs nothing).
Bounded: each measurement runs ~0.4 s; the whole run takes well under 30 s.

    python bench/bench_crypto.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.utils
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from encryption_plugin import Keyring, open_doc, seal_doc  # noqa: E402
from encryption_plugin.envelope import encode_body  # noqa: E402

BUDGET_S = 0.4


def rate(fn: Callable[[], object]) -> float:
    for _ in range(5):
        fn()
    n = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < BUDGET_S:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
    return n / elapsed


def python_results() -> list[dict[str, Any]]:
    keyring = Keyring.generate("bench")
    out = []
    for label, size in (("1 KB", 1024), ("64 KB", 64 * 1024)):
        doc = {"_id": "bench-doc", "text": "x" * (size - 20)}
        body = encode_body({"text": doc["text"]})
        key, nonce = nacl.utils.random(32), nacl.utils.random(24)
        raw = crypto_aead_xchacha20poly1305_ietf_encrypt(body, b"", nonce, key)
        sealed = seal_doc(doc, keyring)

        # The same wrapper (one Python call) around both sides, so a ratio compares the work
        # alone; the loop's values are bound as defaults.
        def seal_ep1(d: dict[str, Any] = doc) -> object:
            return seal_doc(d, keyring)

        def seal_raw(b: bytes = body, k: bytes = key) -> object:
            return crypto_aead_xchacha20poly1305_ietf_encrypt(b, b"", nacl.utils.random(24), k)

        def open_ep1(s: dict[str, Any] = sealed) -> object:
            return open_doc(s, keyring)

        def open_raw(r: bytes = raw, n: bytes = nonce, k: bytes = key) -> object:
            return crypto_aead_xchacha20poly1305_ietf_decrypt(r, b"", n, k)

        out.append({"label": label, "op": "seal", "ep1": rate(seal_ep1), "raw": rate(seal_raw)})
        out.append({"label": label, "op": "open", "ep1": rate(open_ep1), "raw": rate(open_raw)})
    return out


def node_results() -> list[dict[str, Any]] | None:
    node = shutil.which("node")
    if node is None or not (ROOT / "encryption_plugin" / "js" / "node_modules").is_dir():
        return None
    proc = subprocess.run(
        [node, str(ROOT / "bench" / "bench_crypto.mjs"), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: list[dict[str, Any]] = json.loads(proc.stdout)
    return result


def main() -> int:
    py = python_results()
    js = node_results()
    print("ep1 envelope vs raw XChaCha20-Poly1305 on the same body bytes (ops/s; ratio ep1/raw)")
    header = f"{'':14}{'Python ep1':>12}{'raw':>12}{'ratio':>8}"
    print(header + f"   {'JS ep1':>10}{'raw':>12}{'ratio':>8}")
    for i, p in enumerate(py):
        line = f"{p['op'] + ' ' + p['label']:14}{p['ep1']:12.0f}{p['raw']:12.0f}"
        line += f"{p['ep1'] / p['raw']:8.2f}"
        if js is not None:
            j = js[i]
            line += f"   {j['ep1']:10.0f}{j['raw']:12.0f}{j['ep1'] / j['raw']:8.2f}"
        print(line)
    if js is None:
        print("(JavaScript column skipped: node or encryption_plugin/js/node_modules missing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
