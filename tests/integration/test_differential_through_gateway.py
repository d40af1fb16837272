"""Through couchgate, ``/db/<app>`` answers as the database behind it does (issue 22).

The request sequences of the store's differential test (:mod:`tests.store.differential`, which
says what is normalized) go to one app through couchgate and, as the upstream's admin, straight
to the upstream database of a second app couchgate provisioned alike (same shards, same design
document), on Apache CouchDB and the embedded store (pouchdb-server: not yet, see pytestmark).
Every answer must be equal, but the database's name in its info. So a proxy change that alters
an answer is caught on every upstream; that the embedded store answers as CouchDB does is
tests/store/test_differential.py's part.

``COUCHGATE_GATEWAY_DIFF_SEQUENCES`` sets the sequences per upstream (default 25).

Found by this test and fixed in gateway/: CouchDB 3.5.2 ends a bounded eventsource feed twice
(a second chunk after the last), which couchgate's upstream client took for a broken answer (a
503); couchgate now asks for eventsource feeds in HTTP/1.0 (tests/integration/
test_eventsource_through_gateway.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.harness import Device, GatewayHarness
from tests.store.differential import SERVER_KEYS, Request, raw_transport, sequences
from tests.store.test_differential import Tally, run_sequence
from tests.upstreams import Upstream

SEQUENCES = int(os.environ.get("COUCHGATE_GATEWAY_DIFF_SEQUENCES", "25"))
EXPLORE = os.environ.get("COUCHGATE_DIFF_EXPLORE") == "1"
"""CI runs the same sequences every time (derandomized: a CI failure is a change, not luck);
``COUCHGATE_DIFF_EXPLORE=1`` draws new ones, as a long run does."""
# On CouchDB and the embedded store; pouchdb-server's own answers to these sequences (its
# longpoll and continuous feeds wait out their timeouts) are not yet normalized: open work.
pytestmark = pytest.mark.parametrize("gateway_upstream", ["couchdb", "embedded"], indirect=True)
THROUGH_GATEWAY = settings(
    max_examples=SEQUENCES,
    deadline=None,
    database=None,
    derandomize=not EXPLORE,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
GATEWAY_KEYS = SERVER_KEYS | {"db_name"}


@pytest.fixture
def reference(gateway: GatewayHarness, request: pytest.FixtureRequest) -> Upstream:
    """The upstream as its admin (couchgate on CouchDB may itself use JWTs)."""
    if gateway.upstream.kind == "embedded":
        return gateway.upstream
    up: Upstream = request.getfixturevalue(
        "pouchdb" if gateway.upstream.kind == "pouchdb-server" else "couchdb"
    )
    return up


@pytest.fixture
async def device(gateway: GatewayHarness) -> Device:
    return await gateway.new_device()


@pytest.fixture
async def tally(gateway: GatewayHarness) -> AsyncIterator[Tally]:
    counts = Tally()
    yield counts
    print(
        f"\nthrough couchgate on {gateway.upstream.kind}: {counts.sequences} sequences, "
        f"{counts.requests} requests compared, {counts.differences} differences"
    )


@THROUGH_GATEWAY
@given(sequence=sequences)
async def test_gateway_answers_as_its_upstream(
    gateway: GatewayHarness,
    device: Device,
    reference: Upstream,
    tally: Tally,
    sequence: list[Request],
) -> None:
    app, twin = (f"d{uuid.uuid4().hex[:12]}" for _ in range(2))
    for name in (app, twin):
        status, body = await gateway.call("PUT", f"/db/{name}", device=device)
        assert status == 201, body
    upstream_db = quote(gateway.upstream_db(device, twin), safe="")
    try:
        tally.sequences += 1
        straight = raw_transport(f"{reference.url}/{upstream_db}", reference.admin_headers())
        through = raw_transport(device.db_url(app), device.headers)
        label = f"couchgate on {gateway.upstream.kind}"
        await run_sequence(sequence, straight, through, tally, label, GATEWAY_KEYS)
    finally:
        for name in (app, twin):
            await gateway.call("DELETE", f"/db/{name}", device=device)
