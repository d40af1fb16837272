"""The per-device request budget never stops an honest first sync (issue 11): PouchDB's one-shot
``replicate()`` gives up on a 429, so a replication at full speed must never meet it."""

from __future__ import annotations

import pytest

from tests.harness import GatewayHarness
from tests.pouch import device_remote, run_pouch, unexpected_http_failures

DOCS = 20_000
# 20,000 documents in batches of 20 are as many requests (≈6,000 push and pull) as a
# 100,000-document first sync in PouchDB's default batches of 100.
BATCH = 20


@pytest.mark.slow
async def test_a_large_first_sync_with_default_settings_meets_no_429(
    gateway: GatewayHarness,
) -> None:
    device = await gateway.new_device()
    out = await run_pouch(
        "bench",
        remote=device_remote(device, "big"),
        count=DOCS,
        doc_size=16,
        batch_size=BATCH,
        timeout=900,
    )
    push, pull = out["result"]["push"], out["result"]["pull"]
    assert (push["ok"], push["docs_written"]) == (True, DOCS), push
    assert (pull["ok"], pull["docs_written"]) == (True, DOCS), pull
    assert out["http"]["requests"] > 5_000, out["http"]["requests"]
    assert unexpected_http_failures(out) == []
