"""The embedded store answers as Apache CouchDB 3.5.2 does, request for request (issue 22).

Hypothesis draws request sequences over the surface couchgate's allow-list admits
(:mod:`tests.store.differential` says which, and what is normalized before two answers are
compared: sequence numbers' opaque part, server-made revision hashes). Each sequence runs on a
fresh database of the same name on CouchDB and on the store; every answer must be equal.

``COUCHGATE_DIFF_SEQUENCES`` sets how many sequences (default 200, a minute and a half on a
loaded two-core machine). ``COUCHGATE_DIFF_COLLECT=path`` records every difference there as JSON
lines and goes on instead of failing at the first: how a long run is surveyed. What the runs
found, and the differences kept on purpose: docs/couchdb-differences.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.store.conftest import Couch, fresh_db_name
from tests.store.differential import (
    SERVER_KEYS,
    Normalizer,
    Request,
    Send,
    normalized,
    raw_transport,
    send,
    sequences,
)

SEQUENCES = int(os.environ.get("COUCHGATE_DIFF_SEQUENCES", "200"))
COLLECT = os.environ.get("COUCHGATE_DIFF_COLLECT")
EXPLORE = os.environ.get("COUCHGATE_DIFF_EXPLORE") == "1"
"""CI runs the same sequences every time (derandomized: a CI failure is a change, not luck);
``COUCHGATE_DIFF_EXPLORE=1`` draws new ones, as a long run does."""
DIFFERENTIAL = settings(
    max_examples=SEQUENCES,
    deadline=None,
    database=None,
    derandomize=not EXPLORE,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Tally:
    sequences: int = 0
    requests: int = 0
    differences: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


@pytest.fixture
async def tally() -> AsyncIterator[Tally]:
    counts = Tally()
    yield counts
    print(
        f"\ndifferential: {counts.sequences} sequences, {counts.requests} requests compared, "
        f"{counts.differences} differences; CouchDB's statuses "
        f"{dict(sorted(counts.statuses.items()))}"
    )


def transport(server: Couch, db: str) -> Send:
    headers = {"Authorization": server.session.headers["Authorization"]}
    return raw_transport(f"{server.url}/{db}", headers)


async def run_sequence(
    sequence: list[Request],
    reference: Send,
    candidate: Send,
    tally: Tally,
    label: str,
    server_keys: frozenset[str] = SERVER_KEYS,
) -> None:
    """Each request to both servers in turn; the first difference fails (or is collected)."""
    norms = Normalizer(server_keys=server_keys), Normalizer(server_keys=server_keys)
    done: list[str] = []
    for request in sequence:
        expected = normalized(await send(request, reference), norms[0])
        got = normalized(await send(request, candidate), norms[1])
        tally.requests += 1
        tally.statuses[expected[0]] = tally.statuses.get(expected[0], 0) + 1
        done.append(request.describe())
        if expected == got:
            continue
        tally.differences += 1
        if COLLECT is None:
            steps = "\n  ".join(done)
            raise AssertionError(
                f"{label} differs from CouchDB after\n  {steps}\n"
                f"CouchDB: {json.dumps(expected)}\n{label}: {json.dumps(got)}"
            )
        record = {"label": label, "steps": done, "couchdb": expected, "got": got}
        with Path(COLLECT).open("a", encoding="utf-8") as out:  # noqa: ASYNC230 (a test's log)
            out.write(json.dumps(record) + "\n")
        return  # what follows a difference says little


@DIFFERENTIAL
@given(sequence=sequences)
async def test_store_answers_as_couchdb(
    store: Couch, couchdb: Couch, tally: Tally, sequence: list[Request]
) -> None:
    db = fresh_db_name("diff")
    for server in (couchdb, store):
        status, _ = await server.req("PUT", f"/{db}?q=1")
        assert status == 201
    try:
        tally.sequences += 1
        await run_sequence(
            sequence, transport(couchdb, db), transport(store, db), tally, "the store"
        )
    finally:
        for server in (couchdb, store):
            await server.req("DELETE", f"/{db}")
