"""Rate-limit buckets, client addresses and per-app limits, on a clock the test moves."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from gateway.config import load_settings
from gateway.config_values import AppLimits, ConfigError
from gateway.limits.quotas import Usage, usage_of
from gateway.limits.rates import RateLimiter, app_of, client_ip, is_loopback, quota_for

KEY = "k" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_bursts_its_capacity_then_refills_at_the_steady_rate() -> None:
    clock = Clock()
    buckets = RateLimiter(clock)
    assert [buckets.take("a", 3, 60) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 3, 60) == pytest.approx(20.0)  # one token per 20 s
    assert buckets.take("b", 3, 60) == 0.0  # keys are independent
    clock.now += 19
    assert buckets.take("a", 3, 60) == pytest.approx(1.0)
    clock.now += 1
    assert buckets.take("a", 3, 60) == 0.0
    clock.now += 3600  # refills to capacity, never past it
    assert [buckets.take("a", 3, 60) for _ in range(4)][-1] == pytest.approx(20.0)


def test_wait_takes_nothing_and_charge_takes_even_when_empty() -> None:
    clock = Clock()
    buckets = RateLimiter(clock)
    assert buckets.wait("ip", 2, 3600) == 0.0
    assert buckets.wait("ip", 2, 3600) == 0.0
    buckets.charge("ip", 2, 3600)
    buckets.charge("ip", 2, 3600)
    buckets.charge("ip", 2, 3600)  # floors at empty: no debt
    assert buckets.wait("ip", 2, 3600) == pytest.approx(1800.0)
    clock.now += 1800
    assert buckets.wait("ip", 2, 3600) == 0.0


def test_many_keys_forget_the_full_buckets_first() -> None:
    clock = Clock()
    buckets = RateLimiter(clock, max_keys=10)
    for i in range(10):
        buckets.take(f"idle-{i}", 5, 60)
    clock.now += 60  # all refilled
    buckets.take("busy", 1, 60)
    assert len(buckets) == 1
    assert buckets.take("busy", 1, 60) > 0  # the busy one is remembered


def test_client_ip_believes_forwarded_for_only_from_trusted_proxies() -> None:
    xff = {"X-Forwarded-For": "203.0.113.9, 10.0.0.2"}
    direct = make_mocked_request("GET", "/", headers=xff).clone(remote="127.0.0.1")
    assert client_ip(direct, ()) == "127.0.0.1"
    assert client_ip(direct, ("127.0.0.1",)) == "10.0.0.2"
    assert client_ip(direct, ("127.0.0.1", "10.0.0.2")) == "203.0.113.9"
    bare = make_mocked_request("GET", "/").clone(remote="127.0.0.1")
    assert client_ip(bare, ("127.0.0.1",)) == "127.0.0.1"


def test_loopback_and_app_of() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1")
    assert not is_loopback("10.0.0.1") and not is_loopback(None) and not is_loopback("x")
    assert app_of(make_mocked_request("GET", "/db/notes/_changes")) == "notes"
    assert app_of(make_mocked_request("GET", "/auth/me")) == ""


def test_app_limits_from_toml_and_env_override_the_global_ones(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'secret_keys = ["{KEY}"]\nquota_docs = 100\n'
        "[app_limits.photos]\nquota_bytes = 5000\ndevice_requests_per_minute = 10\n"
    )
    s = load_settings(config_file=cfg, env={})
    assert s.app_limits["photos"] == AppLimits(quota_bytes=5000, device_requests_per_minute=10)
    assert quota_for(s, "photos").bytes == 5000 and quota_for(s, "photos").docs == 100
    assert quota_for(s, "notes").bytes == 0 and quota_for(s, "notes").docs == 100
    assert quota_for(s, "photos").device_requests_per_minute == 10
    env = {"COUCHGATE_SECRET_KEYS": KEY, "COUCHGATE_APP_LIMITS": '{"notes": {"quota_docs": 0}}'}
    from_env = load_settings(config_file=cfg, env=env)
    assert quota_for(from_env, "notes").docs == 0 and "photos" not in from_env.app_limits


@pytest.mark.parametrize(
    "raw",
    [
        '{"notes": {"quota_pages": 1}}',
        '{"Bad App": {"quota_docs": 1}}',
        "[1]",
        "{not json",
        '{"notes": {"quota_docs": -1}}',
    ],
)
def test_bad_app_limits_name_the_setting(raw: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env={"COUCHGATE_SECRET_KEYS": KEY, "COUCHGATE_APP_LIMITS": raw})
    assert err.value.setting == "app_limits"


def test_usage_reads_couchdb_and_older_db_info() -> None:
    couch = {"doc_count": 3, "sizes": {"file": 900, "external": 120, "active": 100}}
    assert usage_of(couch) == Usage(docs=3, bytes=120)
    assert usage_of({"doc_count": 2, "data_size": 50}) == Usage(docs=2, bytes=50)
    assert usage_of({"doc_count": 2}) == Usage(docs=2, bytes=0)
    assert usage_of(None) == Usage(0, 0)
