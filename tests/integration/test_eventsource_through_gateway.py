"""A bounded ``feed=eventsource`` through couchgate answers what its upstream sends (issue 22).

CouchDB 3.5.2 ends such a feed twice: after the chunked body's last chunk it writes one more
``\\n`` chunk and another last chunk. couchgate's upstream client pooled the connection at the
first end, and the stray bytes, arriving a moment later, became the start of the next answer on
it: that request (a POST is never retried) was a 503. An eventsource connection is not reused.
"""

from __future__ import annotations

import pytest

from tests.harness import Device, GatewayHarness
from tests.store.differential import Normalizer, Request, normalized, raw_transport, send

pytestmark = pytest.mark.parametrize("gateway_upstream", ["couchdb"], indirect=True)

ROUNDS = 30
"""Whether the stray bytes arrive before or after the connection is pooled is the upstream's
timing: thirty rounds made the 503 all but certain here before the fix."""


async def test_a_bounded_eventsource_feed_leaves_nothing_behind(gateway: GatewayHarness) -> None:
    device: Device = await gateway.new_device()
    status, body = await gateway.call("PUT", "/db/notes", device=device)
    assert status == 201, body
    through = raw_transport(device.db_url("notes"), device.headers)
    norm = Normalizer()
    empty = Request("GET", "/_changes", (("feed", "eventsource"), ("timeout", "10")), read="sse")
    ask = Request("POST", "/_bulk_get", body={"docs": [{"id": "a"}]})
    for _ in range(ROUNDS):
        assert normalized(await send(empty, through), norm) == (200, [])
        status, answer = normalized(await send(ask, through), norm)
        assert status == 200, answer
    await send(Request("PUT", "/a", body={"v": 1}), through)
    since_now = (("feed", "eventsource"), ("since", "now"), ("timeout", "10"))
    answers = [
        normalized(await send(r, through), norm)
        for r in [
            Request("GET", "/_changes", (("feed", "eventsource"), ("limit", "1")), read="sse"),
            Request("POST", "/_changes", since_now, body={}, read="sse"),
            ask,
        ]
    ]
    (row,) = answers[0][1]
    assert row["data"]["id"] == "a" and row["id"] == row["data"]["seq"]
    assert answers[1] == (200, [])
    assert answers[2][0] == 200
