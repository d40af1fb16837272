"""Compressed request bodies are refused as CouchDB refuses the codings it does not take (issue 9,
finding 8): a gzip PUT was forwarded already inflated, still labelled gzip, and the store 500ed."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.harness import GatewayHarness


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/db/notes/gz", {"a": 1}),
        ("/db/notes/_bulk_docs", {"docs": [{"_id": "gz"}]}),
        ("/db/notes/_local/gz", {"last_seq": 1}),
        ("/db/notes/_revs_diff", {"gz": ["1-" + "a" * 32]}),
    ],
)
@pytest.mark.parametrize("coding", ["gzip", "deflate", "compress", "GZIP, identity"])
async def test_compressed_bodies_are_refused_in_couchdbs_shape(
    gateway: GatewayHarness, path: str, body: object, coding: str
) -> None:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    method = "POST" if path.endswith(("_bulk_docs", "_revs_diff")) else "PUT"
    status, answer = await gateway.call(
        method,
        path,
        device=device,
        data=gzip.compress(json.dumps(body).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": coding},
    )
    first = coding.split(",")[0]
    assert (status, answer) == (
        415,
        {"error": "bad_content_type", "reason": f"{first} is not a supported content encoding."},
    )
    status, _ = await gateway.call("GET", "/db/notes/gz", device=device)
    assert status == 404
    status, _ = await gateway.call(
        "PUT",
        "/db/notes/plain",
        device=device,
        json={"a": 1},
        headers={"Content-Encoding": "identity"},
    )
    assert status == 201
