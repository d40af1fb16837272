"""What the PouchDB replication benchmarks share: their flags, their table and their main."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.harness import Device, GatewayHarness
    from tests.upstreams import Upstream

ROOT = Path(__file__).resolve().parents[1]


def flags(description: str | None) -> argparse.ArgumentParser:
    """The flags every benchmark of the gateway in front of an upstream takes."""
    parser = argparse.ArgumentParser(description=(description or "").split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument(
        "--loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="the event loop of the benchmark's process, and so of the gateway it runs "
        "(couchgate serve runs on uvloop where installed)",
    )
    parser.add_argument(
        "--busy",
        action="store_true",
        help="run a CPU-bound process beside the benchmark, as on a busy machine",
    )
    parser.add_argument(
        "--upstream",
        choices=["couchdb", "pouchdb-server", "embedded"],
        default="couchdb",
        help="Apache CouchDB (COUCHDB_URL or couchdb-test-server; the default, falling back to "
        "pouchdb-server when there is none), pouchdb-server, or the embedded store (direct "
        "then means straight at the store's loopback address, in the gateway's process)",
    )
    parser.add_argument(
        "--mode",
        choices=["jwt", "proxy", "admin"],
        default="jwt",
        help="couchgate's upstream auth mode against CouchDB (pouchdb-server: always admin)",
    )
    return parser


def parse_args(description: str | None, argv: list[str] | None) -> argparse.Namespace:
    return replication_flags(description).parse_args(argv)


def replication_flags(description: str | None) -> argparse.ArgumentParser:
    """The replication benchmarks' flags: the common ones and the replication's shape."""
    parser = flags(description)
    parser.add_argument("--docs", type=int, default=2000, help="documents per replication")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (median is reported)")
    parser.add_argument("--doc-size", type=int, default=256, help="filler bytes per document")
    parser.add_argument("--batch-size", type=int, default=100, help="PouchDB's batch_size")
    return parser


@contextlib.contextmanager
def busy_machine(busy: bool) -> Iterator[None]:
    """With ``busy``, one process spinning on a core for the benchmark's whole run."""
    if not busy:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


@contextlib.contextmanager
def bench_upstream(
    args: argparse.Namespace,
) -> Iterator[tuple[Upstream | None, dict[str, object]]]:
    """The upstream the flags ask for (None: the embedded store, in a temporary directory), and
    the gateway settings for its auth mode. What the gateway really talks to is its harness's
    ``upstream``."""
    from tests.conftest import couchdb_settings
    from tests.upstreams import apache_couchdb, pouchdb_server

    with contextlib.ExitStack() as stack:
        if args.upstream == "embedded":
            args.mode = "admin"
            data = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-embedded-"))
            yield None, {"data_dir": data}
            return
        couchdb = stack.enter_context(apache_couchdb()) if args.upstream == "couchdb" else None
        if couchdb is not None:
            yield couchdb, couchdb_settings(couchdb, args.mode)
        else:
            args.mode = "admin"
            yield stack.enter_context(pouchdb_server()), {}


class CpuTally:
    """CPU time of this process (which runs the gateway, and the embedded store when that is
    the upstream) per variant, and the requests the client made in it.

    Unlike elapsed time this hardly moves with what else the machine runs, so it shows the
    gateway's own cost even on a busy machine: the gateway rounds' CPU less the direct rounds',
    per request, is what couchgate spends on each request it passes on.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.requests: dict[str, int] = {}

    @contextlib.contextmanager
    def counting(self, name: str) -> Iterator[Callable[[int], None]]:
        def requests(n: int) -> None:
            self.requests[name] = self.requests.get(name, 0) + n

        started = time.process_time()
        yield requests
        self.seconds[name] = self.seconds.get(name, 0.0) + time.process_time() - started

    def per_request(self, variant: str, reference: str) -> float | None:
        requests = self.requests.get(variant)
        if not requests:
            return None
        spent = self.seconds.get(variant, 0.0) - self.seconds.get(reference, 0.0)
        return spent / requests * 1e6


def cpu_lines(us_per_request: float | None, floor_us: float | None = None) -> list[str]:
    if us_per_request is None:
        return []
    lines = [f"couchgate's CPU per request it passes on: {us_per_request:.0f} µs"]
    if floor_us is not None:
        lines.append(f"the bare aiohttp pass-through's: {floor_us:.0f} µs")
    return lines


@contextlib.asynccontextmanager
async def gateway_and_device(
    args: argparse.Namespace, **overrides: object
) -> AsyncIterator[tuple[GatewayHarness, Device, contextlib.AsyncExitStack]]:
    """The upstream the flags ask for, a couchgate in front of it (the tests' harness, with
    ``overrides``), a device signed in to it, and a stack for whatever else the benchmark starts
    (closed before the gateway stops)."""
    from tests.harness import start_gateway, stop_gateway

    with bench_upstream(args) as (chosen, settings):
        gateway = await start_gateway(chosen, **settings, **overrides)
        try:
            async with contextlib.AsyncExitStack() as stack:
                yield gateway, await gateway.new_device(), stack
        finally:
            await stop_gateway(gateway)


def gateway_overhead(registry: Any) -> dict[str, dict[str, float]]:
    """Per route class: requests, and the p50/p99 of the time spent in couchgate itself (its
    ``couchgate_gateway_seconds`` histogram; quantiles interpolated within buckets)."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    for family in registry.collect():
        if family.name != "couchgate_gateway_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                buckets.setdefault(sample.labels["route"], []).append((bound, sample.value))
    out = {}
    for route, cumulative in buckets.items():
        cumulative.sort()
        total = cumulative[-1][1]
        if total:
            out[route] = {
                "requests": total,
                "p50_ms": _quantile(cumulative, 0.5) * 1000,
                "p99_ms": _quantile(cumulative, 0.99) * 1000,
            }
    return out


def _quantile(cumulative: list[tuple[float, float]], q: float) -> float:
    """Prometheus' histogram_quantile: linear within the bucket the rank falls in."""
    rank = q * cumulative[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            span = count - lower_count
            share = (rank - lower_count) / span if span else 0.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def overhead_lines(overhead: dict[str, dict[str, float]]) -> list[str]:
    if not overhead:
        return []
    lines = [
        "time in couchgate per request (its own, upstream waits taken out):",
        f"  {'route class':28}{'requests':>10}{'p50 ms':>9}{'p99 ms':>9}",
    ]
    for route, row in sorted(overhead.items(), key=lambda kv: -kv[1]["requests"]):
        lines.append(
            f"  {route:28}{row['requests']:>10.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
        )
    return lines


def rate_table(
    title: str, rows: list[tuple[str, str]], ratio_label: str, result: dict[str, Any]
) -> str:
    """``rows`` are (label, key in result["docs_per_s"]); the last line is the ratio."""
    rates, ratio = result["docs_per_s"], result["ratio"]
    width = max(len(label) for label, _ in [*rows, (ratio_label, "")]) + 2
    lines = [title, f"{'':{width}}{'push docs/s':>12}{'pull docs/s':>14}"]
    for label, key in rows:
        lines.append(f"{label:{width}}{rates[key]['push']:>12.0f}{rates[key]['pull']:>14.0f}")
    lines.append(f"{ratio_label:{width}}{ratio['push']:>12.2f}{ratio['pull']:>14.2f}")
    spread = result.get("round_ratios")
    if spread:
        low_high = {w: f"{min(v):.2f}-{max(v):.2f}" for w, v in spread.items()}
        label = "  rounds, lowest-highest"
        lines.append(f"{label:{width}}{low_high['push']:>12}{low_high['pull']:>14}")
    if result.get("busy"):
        lines.append("(a CPU-bound process ran beside it: --busy)")
    return "\n".join(lines)


def run(
    measure: Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]],
    report: Callable[[dict[str, Any]], str],
    args: argparse.Namespace,
) -> int:
    if str(ROOT) not in sys.path:  # run as a file rather than with -m from the root
        sys.path.insert(0, str(ROOT))
    from gateway.cli import event_loop

    factory = event_loop if args.loop == "uvloop" else asyncio.new_event_loop
    with busy_machine(args.busy), asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(measure(args))
    result["loop"] = args.loop
    result["busy"] = args.busy
    print(json.dumps(result) if args.json else report(result))
    return 0


Timings = dict[str, dict[str, list[float]]]


def record(timings: Timings, name: str, out: dict[str, Any], docs: int, ok: bool = True) -> None:
    """Keep one run's push and pull times; a run that did not move every document is an error,
    not a fast result."""
    for way in ("push", "pull"):
        replication = out["result"][way]
        if replication["docs_written"] != docs or not ok:
            raise RuntimeError(
                f"{name} {way} wrote {replication['docs_written']} of {docs} docs: {replication}"
            )
        timings[name][way].append(replication["elapsed_ms"])


def summary(
    args: argparse.Namespace, upstream: str, timings: Timings, numerator: str, denominator: str
) -> dict[str, Any]:
    """Median docs/s of each variant, the ratio ``numerator / denominator`` of the medians, and
    the spread: each round's own ratio (rounds interleave the variants, so a round's pair ran
    under the same conditions)."""

    def rate(ms: float) -> float:
        return float(args.docs / (ms / 1000))

    rates = {
        name: {way: rate(statistics.median(ms)) for way, ms in ways.items()}
        for name, ways in timings.items()
    }
    per_round = {
        way: sorted(
            d / n for n, d in zip(timings[numerator][way], timings[denominator][way], strict=True)
        )
        for way in ("push", "pull")
    }
    return {
        "docs": args.docs,
        "rounds": args.rounds,
        "doc_size": args.doc_size,
        "batch_size": args.batch_size,
        "upstream": upstream,
        "mode": args.mode,
        "keepalive": getattr(args, "keepalive", False),
        "docs_per_s": rates,
        "ratio": {w: rates[numerator][w] / rates[denominator][w] for w in ("push", "pull")},
        "round_ratios": per_round,
        "elapsed_ms": timings,
    }
