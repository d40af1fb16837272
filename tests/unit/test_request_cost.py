"""The device budget counts what a request costs, and a sign-in attempt is taken before it is
evaluated and given back when it worked."""

from __future__ import annotations

import pytest

from gateway.limits.rates import REPLICATION_COST, RateLimiter, request_cost


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_replication_batches_cost_less_than_other_requests() -> None:
    for route in ("endpoint_changes", "endpoint_revs_diff", "endpoint_bulk_get", "local"):
        assert request_cost(route) == REPLICATION_COST < 1
    for other in ("doc", "attachment", "db", "/auth/me", None):
        assert request_cost(other) == 1.0


def test_a_bucket_takes_a_cost_and_says_how_long_until_it_could() -> None:
    buckets = RateLimiter(Clock())
    assert [buckets.take("d", 2, 60, 0.25) for _ in range(8)] == [0.0] * 8
    assert buckets.take("d", 2, 60, 0.25) == pytest.approx(7.5)


def test_give_back_returns_a_token_but_never_past_full() -> None:
    buckets = RateLimiter(Clock())
    assert buckets.take("ip", 2, 3600) == 0.0
    assert buckets.take("ip", 2, 3600) == 0.0
    assert buckets.take("ip", 2, 3600) > 0
    buckets.give_back("ip", 2, 3600)
    assert buckets.take("ip", 2, 3600) == 0.0
    buckets.give_back("ip", 2, 3600)
    buckets.give_back("ip", 2, 3600)
    buckets.give_back("ip", 2, 3600)
    assert [buckets.take("ip", 2, 3600) for _ in range(2)] == [0.0, 0.0]
    assert buckets.take("ip", 2, 3600) > 0
