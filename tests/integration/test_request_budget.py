"""The per-device request budget never stops an honest first sync (issue 11): PouchDB's one-shot
``replicate()`` gives up on a 429, so a replication at full speed must never meet it."""

from __future__ import annotations

from dataclasses import fields

import pytest

from gateway.config import Settings
from tests.harness import MakeGateway
from tests.pouch import device_remote, run_pouch, unexpected_http_failures

# The default budget scaled down tenfold, with the sync scaled alike: 2,000 documents in batches
# of 20 are as many requests (about 600, push and pull) against a tenth of the default bucket as
# 20,000 documents against the default, which is as many requests as a 100,000-document first
# sync in PouchDB's default batches of 100. Ten times cheaper to run, the same margin tested.
SCALE = 10
DOCS = 20_000 // SCALE
BATCH = 20
DEFAULT = next(f.default for f in fields(Settings) if f.name == "device_requests_per_minute")
assert isinstance(DEFAULT, int)
PER_MINUTE = DEFAULT // SCALE


@pytest.mark.slow
async def test_a_large_first_sync_with_default_settings_meets_no_429(
    make_gateway: MakeGateway,
) -> None:
    gateway = await make_gateway(device_requests_per_minute=PER_MINUTE)
    device = await gateway.new_device()
    out = await run_pouch(
        "bench",
        remote=device_remote(device, "big"),
        count=DOCS,
        doc_size=16,
        batch_size=BATCH,
        timeout=300,
    )
    push, pull = out["result"]["push"], out["result"]["pull"]
    assert (push["ok"], push["docs_written"]) == (True, DOCS), push
    assert (pull["ok"], pull["docs_written"]) == (True, DOCS), pull
    # More requests than the scaled bucket holds, were each to count whole.
    assert out["http"]["requests"] > PER_MINUTE * 5 * 1.5, out["http"]["requests"]
    assert unexpected_http_failures(out) == []
