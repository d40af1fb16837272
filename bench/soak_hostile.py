"""Soak: honest users replicate while a hostile client runs the fuzz suite's strategies.

Usage (from the repository root; loopback only; not part of CI):

    python -m bench.soak_hostile [--users 4] [--seconds 60] [--batch 50]
                                 [--hostile 3000] [--json]
                                 [--upstream embedded|couchdb|pouchdb-server] [--mode jwt|admin]

One couchgate (the tests' harness) on its embedded store (the default), or in front of Apache
CouchDB or pouchdb-server (``--upstream``, found as the benchmarks find them). Each honest user
has a device and an app and goes round the replication protocol's requests as a client does
(``_bulk_docs`` of a batch, ``_changes`` since its last sequence, ``_revs_diff``,
``_bulk_get``, a ``_local`` checkpoint) until the time is up. Meanwhile a hostile user (a
device of its own) sends requests drawn from :mod:`tests.fuzz.strategies` over raw sockets,
from a thread, as fast as they are answered, up to ``--hostile`` of them.

Reports, for honest users: requests, failures (anything but the expected statuses), 5xx and
latency p50/p99/max; for the hostile client: requests, statuses, 5xx; and for everyone: leaks
(another user's marker in an answer) and secrets in the log (tokens, markers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Honest:
    requests: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    server_errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    leaks: int = 0


@dataclass
class Hostile:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    leaks: int = 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--users", type=int, default=4, help="honest users replicating")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the soak runs")
    parser.add_argument("--batch", type=int, default=50, help="documents per honest batch")
    parser.add_argument("--hostile", type=int, default=3000, help="most hostile requests")
    parser.add_argument(
        "--upstream", choices=["embedded", "couchdb", "pouchdb-server"], default="embedded"
    )
    parser.add_argument("--mode", choices=["jwt", "proxy", "admin"], default="jwt")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    return parser.parse_args(argv)


def _blocking_ask(port: int, raw: bytes, timeout: float = 3.0) -> tuple[int | None, bytes]:
    """One request on a blocking socket (the hostile thread has no event loop)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(raw)
        data = bytearray()
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except OSError:
            pass
    from tests.rawhttp import parse_answer

    answer = parse_answer(bytes(data), head=False, complete=True)  # interim 1xx skipped
    return answer.status, bytes(data)


def run_hostile(
    port: int,
    credentials: Any,
    markers: list[bytes],
    stop: threading.Event,
    out: Hostile,
    most: int,
) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.fuzz.strategies import malformed_requests, requests

    @settings(
        max_examples=most,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def attack(data: st.DataObject) -> None:
        if data.draw(st.integers(0, 9)) == 0:
            raw = data.draw(malformed_requests(credentials))
        else:
            raw = data.draw(requests(credentials)).raw()
        if stop.is_set():
            return  # drawn all the same: Hypothesis wants every run to draw alike
        try:
            status, answer = _blocking_ask(port, raw)
        except OSError:
            status, answer = None, b""
        out.requests += 1
        out.statuses[status or 0] += 1
        if status is not None and status >= 500 and b"at capacity" not in answer:
            out.server_errors.append(f"{status} to {raw[:160]!r}")
        if any(marker in answer for marker in markers):
            out.leaks += 1

    attack()


async def honest_user(
    gateway: Any,
    device: Any,
    marker: str,
    others: list[bytes],
    until: float,
    out: Honest,
    batch: int,
) -> None:
    from tests.fuzz.strategies import APP

    session = gateway.session
    base = device.db_url(APP)  # the app the hostile client aims at too
    headers = {**device.headers, "Content-Type": "application/json"}
    expected = {200, 201, 202}
    since: object = 0
    round_no = 0
    checkpoint: dict[str, object] = {}

    async def call(method: str, path: str, body: object = None) -> Any:
        started = time.monotonic()
        data = None if body is None else json.dumps(body)
        async with session.request(method, base + path, data=data, headers=headers) as r:
            raw = await r.read()
        out.latencies_ms.append((time.monotonic() - started) * 1000)
        out.requests += 1
        if r.status >= 500:
            out.server_errors += 1
        if r.status not in expected:
            out.failures[f"{method} {path.split('?')[0]} {r.status}"] += 1
        if any(other in raw for other in others):
            out.leaks += 1
        try:
            return json.loads(raw)
        except ValueError:
            return None

    await call("PUT", "")
    while time.monotonic() < until:
        round_no += 1
        docs = [
            {"_id": f"r{round_no}-{i}", "m": marker, "n": i, "text": "x" * 64} for i in range(batch)
        ]
        written = await call("POST", "/_bulk_docs", {"docs": docs})
        changes = await call("GET", f"/_changes?since={since}&limit={batch}&style=all_docs")
        if isinstance(changes, dict):
            since = changes.get("last_seq", since)
            rows = changes.get("results", [])
            revs = {row["id"]: [c["rev"] for c in row["changes"]] for row in rows}
            await call("POST", "/_revs_diff", revs)
            await call(
                "POST",
                "/_bulk_get?revs=true",
                {"docs": [{"id": i, "rev": r[0]} for i, r in revs.items()]},
            )
        if isinstance(written, list):
            saved = await call("PUT", "/_local/soak-" + marker, {**checkpoint, "last_seq": since})
            if isinstance(saved, dict) and "rev" in saved:
                checkpoint = {"_rev": saved["rev"]}


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    from bench.replication_common import bench_upstream
    from gateway.upstream.backend import member_name
    from tests.fuzz.strategies import MARKER, Credentials
    from tests.harness import start_gateway, stop_gateway
    from tests.logcapture import captured_logs

    with contextlib.ExitStack() as stack:
        chosen, settings = stack.enter_context(bench_upstream(args))
        gateway = await start_gateway(chosen, **settings)
        logs = stack.enter_context(captured_logs(gateway.settings))
        try:
            devices = [await gateway.new_device() for _ in range(args.users)]
            attacker = await gateway.new_device()
            await gateway.call("PUT", "/db/fuzz", device=attacker)
            victim = devices[0]
            credentials = Credentials(
                attacker.token,
                victim.user,
                victim.device,
                member_name(victim.user),
                victim.token[:-3],
            )
            markers = [f"honest{secrets.token_hex(5)}" for _ in devices]
            honest = Honest()
            hostile = Hostile()
            stop = threading.Event()
            until = time.monotonic() + args.seconds
            port = gateway.server.port or 0
            hostile_run = asyncio.create_task(
                asyncio.to_thread(
                    run_hostile,
                    port,
                    credentials,
                    [m.encode() for m in markers],
                    stop,
                    hostile,
                    args.hostile,
                )
            )
            await asyncio.gather(
                *(
                    honest_user(
                        gateway,
                        device,
                        marker,
                        [m.encode() for m in markers if m != marker],
                        until,
                        honest,
                        args.batch,
                    )
                    for device, marker in zip(devices, markers, strict=True)
                )
            )
            stop.set()
            await hostile_run
            health = (await gateway.call("GET", "/healthz"))[0]
        finally:
            await stop_gateway(gateway)
        text = logs.getvalue()
        logged = sorted(
            {
                label
                for label, needle in [
                    ("fuzz marker", MARKER),
                    *[("honest marker", m) for m in markers],
                    *[("token", d.token) for d in [*devices, attacker]],
                ]
                if needle in text
            }
        )
    lat = honest.latencies_ms
    return {
        "upstream": args.upstream,
        "seconds": args.seconds,
        "users": args.users,
        "honest": {
            "requests": honest.requests,
            "failures": dict(honest.failures),
            "server_errors": honest.server_errors,
            "p50_ms": round(statistics.median(lat), 1) if lat else 0.0,
            "p99_ms": round(percentile(lat, 0.99), 1),
            "max_ms": round(max(lat), 1) if lat else 0.0,
            "leaks": honest.leaks,
        },
        "hostile": {
            "requests": hostile.requests,
            "statuses": dict(sorted(hostile.statuses.items())),
            "server_errors": len(hostile.server_errors),
            "server_error_examples": hostile.server_errors[:5],
            "leaks": hostile.leaks,
        },
        "healthz_after": health,
        "secrets_in_log": logged,
    }


def report(result: dict[str, Any]) -> str:
    h, x = result["honest"], result["hostile"]
    lines = [
        f"soak on {result['upstream']}: {result['users']} honest users, {result['seconds']:.0f} s",
        f"  honest:  {h['requests']} requests, {h['server_errors']} 5xx, failures "
        f"{h['failures'] or 'none'}, p50 {h['p50_ms']} ms, p99 {h['p99_ms']} ms, "
        f"max {h['max_ms']} ms, leaks {h['leaks']}",
        f"  hostile: {x['requests']} requests, {x['server_errors']} 5xx, leaks {x['leaks']}, "
        f"statuses {x['statuses']}",
    ]
    lines += [f"    5xx: {example}" for example in x["server_error_examples"]]
    lines.append(
        f"  /healthz after: {result['healthz_after']}; secrets in the log: "
        f"{result['secrets_in_log'] or 'none'}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    args = parse_args(argv)
    result = asyncio.run(soak(args))
    print(json.dumps(result) if args.json else report(result))
    bad = (
        result["honest"]["server_errors"]
        + result["hostile"]["server_errors"]
        + result["honest"]["leaks"]
        + result["hostile"]["leaks"]
    )
    return 1 if bad or result["secrets_in_log"] or result["healthz_after"] != 200 else 0


if __name__ == "__main__":
    sys.exit(main())
