"""What one replication request costs through couchgate, against two references.

Usage (from the repository root):

    python -m bench.bench_request_cost [--requests 2000]
                                       [--upstream couchdb|pouchdb-server|embedded]
                                       [--mode jwt|proxy|admin] [--close] [--busy]
                                       [--classes checkpoint,revs_diff,...]

For each request class a replication makes (a checkpoint read, ``_revs_diff`` and ``_bulk_get`` of
100 documents, a ``_changes`` page, a ``_bulk_docs`` of 100 new documents of 1 KB), a client in
a process of its own sends ``--requests`` of them one after the other, as a replicator does, to:

- the upstream directly (as its admin),
- a bare pass-through written with aiohttp (bench/pass_through.py: no checks, no auth, no
  metrics): the floor of any proxy built on aiohttp, and
- couchgate (``/db/<app>`` with a device token).

It prints the time per request each way, and the CPU this process (the two proxies, and the
embedded store when that is the upstream) spent per request, which hardly moves with what else
the machine runs. couchgate less the pass-through is what couchgate's own work costs; the
pass-through less direct is what any aiohttp hop costs.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import secrets
import socket
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from bench import replication_common as common
from bench.pass_through import pass_through

CLASSES = ("checkpoint", "revs_diff", "bulk_get", "changes", "bulk_docs")
SEEDED = 100
DOC = {"filler": "x" * 1024}


def _request(kind: str, i: int) -> tuple[str, str, bytes | None]:
    """Method, path below the database, and body of request ``i`` of a class."""
    ids = [f"seed-{n:03}" for n in range(SEEDED)]
    if kind == "checkpoint":
        return "GET", "/_local/checkpoint", None
    if kind == "revs_diff":
        return "POST", "/_revs_diff", json.dumps({d: ["1-abc"] for d in ids}).encode()
    if kind == "bulk_get":
        return (
            "POST",
            "/_bulk_get?revs=true",
            json.dumps({"docs": [{"id": d} for d in ids]}).encode(),
        )
    if kind == "changes":
        return "GET", "/_changes?style=all_docs&limit=100", None
    docs = [{"_id": f"new-{i}-{n}", **DOC} for n in range(100)]
    return "POST", "/_bulk_docs", json.dumps({"docs": docs, "new_edits": True}).encode()


def client(url: str, auth: str, kind: str, count: int, keepalive: bool) -> None:
    """The load: ``count`` requests of one class in a row; prints the seconds they took."""
    parts = urlsplit(url)
    headers = {
        "Authorization": auth,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    if not keepalive:
        headers["Connection"] = "close"
    conn: http.client.HTTPConnection | None = None
    started = time.perf_counter()
    for i in range(count):
        if conn is None:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port)
            conn.connect()
            assert conn.sock is not None  # as every HTTP client of a replicator does
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        method, path, body = _request(kind, i)
        conn.request(method, parts.path + path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status >= 300:
            raise SystemExit(f"{kind}: {response.status} from {parts.path}{path}")
        if not keepalive:
            conn.close()
            conn = None
    print(time.perf_counter() - started)


async def _timed_client(url: str, auth: str, kind: str, args: argparse.Namespace) -> float:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bench_request_cost",
        "--client",
        url,
        auth,
        kind,
        str(args.requests),
        "close" if args.close else "keepalive",
        stdout=subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"the {kind} client failed against {url}")
    return float(out)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, dict[str, dict[str, float]]] = {}
    async with common.gateway_and_device(args) as (gateway, device, stack):
        upstream = gateway.upstream
        app = f"cost-{secrets.token_hex(3)}"
        db = gateway.upstream_db(device, app)
        await gateway.call("PUT", f"/db/{app}", device=device)
        seed = [{"_id": f"seed-{n:03}", **DOC} for n in range(SEEDED)]
        await gateway.call("POST", f"/db/{app}/_bulk_docs", device=device, json={"docs": seed})
        await gateway.call(
            "PUT", f"/db/{app}/_local/checkpoint", device=device, json={"last_seq": "1"}
        )
        admin = upstream.admin_headers()
        floor = await stack.enter_async_context(pass_through(f"{upstream.url}/{db}", admin))
        targets = {
            "direct": (f"{upstream.url}/{db}", admin["Authorization"]),
            "pass-through": (floor, ""),
            "couchgate": (device.db_url(app), f"Bearer {device.token}"),
        }
        for kind in args.classes.split(","):
            results[kind] = {}
            for name, (url, auth) in targets.items():
                cpu = time.process_time()
                seconds = await _timed_client(url, auth, kind, args)
                results[kind][name] = {
                    "us_per_request": seconds / args.requests * 1e6,
                    "cpu_us_per_request": (time.process_time() - cpu) / args.requests * 1e6,
                }
    return {
        "upstream": upstream.kind,
        "mode": args.mode,
        "requests": args.requests,
        "keepalive": not args.close,
        "classes": results,
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"{result['requests']} requests of each class in a row, upstream {result['upstream']} "
        f"({result['mode']} mode), "
        + ("connections kept alive" if result["keepalive"] else "a connection per request"),
        f"{'':12}{'µs per request: direct':>24}{'pass-through':>14}{'couchgate':>11}"
        f"{'   CPU µs: pass-through':>24}{'couchgate':>11}",
    ]
    for kind, row in result["classes"].items():
        lines.append(
            f"{kind:12}{row['direct']['us_per_request']:>24.0f}"
            f"{row['pass-through']['us_per_request']:>14.0f}{row['couchgate']['us_per_request']:>11.0f}"
            f"{row['pass-through']['cpu_us_per_request']:>24.0f}"
            f"{row['couchgate']['cpu_us_per_request']:>11.0f}"
        )
    if result.get("busy"):
        lines.append("(a CPU-bound process ran beside it: --busy)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--client"]:
        url, auth, kind, count, how = argv[1:6]
        client(url, auth, kind, int(count), how == "keepalive")
        return 0
    parser = common.flags(__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests of each class")
    parser.add_argument("--close", action="store_true", help="a new connection per request")
    parser.add_argument(
        "--classes", default=",".join(CLASSES), help="which request classes, comma-separated"
    )
    return common.run(measure, report, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
