"""bench_replication's printed report, for a run with and without the ``--floor`` variant (the
default run has none: its report must still print)."""

from __future__ import annotations

from typing import Any

from bench.bench_replication import report


def result(floor_ratio: dict[str, float] | None) -> dict[str, Any]:
    docs_per_s = {
        "direct": {"push": 100.0, "pull": 200.0},
        "gateway": {"push": 50.0, "pull": 100.0},
    }
    if floor_ratio is not None:
        docs_per_s["floor"] = {"push": 80.0, "pull": 160.0}
    return {
        "docs": 10,
        "doc_size": 256,
        "batch_size": 100,
        "rounds": 1,
        "upstream": "embedded",
        "mode": "admin",
        "docs_per_s": docs_per_s,
        "ratio": {"push": 0.5, "pull": 0.5},
        "floor_ratio": floor_ratio,
    }


def test_a_run_without_the_floor_variant_reports_two_rows() -> None:
    printed = report(result(None))
    assert "through couchgate" in printed
    assert "bare" not in printed


def test_a_run_with_the_floor_variant_reports_its_row_and_ratio() -> None:
    printed = report(result({"push": 0.8, "pull": 0.8}))
    assert "through a bare aiohttp hop" in printed
    assert "ratio bare hop/direct" in printed
