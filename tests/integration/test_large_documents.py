"""Documents over 8 MB (CouchDB's old default max_document_size) go through couchgate whole:
the gateway reads them up to its own cap to check them, and streams the answer back. The same
test runs against a real CouchDB in test_couchdb.py where one is available."""

from __future__ import annotations

import io
import json
import os

from tests.harness import GatewayHarness

NINE_MB = 9 * 1024 * 1024


async def test_a_document_over_8_mb_round_trips(gateway: GatewayHarness) -> None:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes/", device=device))[0] == 201
    blob = os.urandom(NINE_MB // 2).hex()
    payload = io.BytesIO(json.dumps({"blob": blob}).encode())  # streamed, as a real client would
    status, body = await gateway.call(
        "PUT",
        "/db/notes/big",
        device=device,
        data=payload,
        headers={"Content-Type": "application/json"},
    )
    assert status == 201, body
    status, doc = await gateway.call("GET", "/db/notes/big", device=device)
    assert status == 200 and doc["blob"] == blob
