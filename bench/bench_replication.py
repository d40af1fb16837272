"""Replication throughput: PouchDB straight to the upstream vs. PouchDB through couchgate.

Usage (from the repository root, after ``npm ci`` in tests/js):

    python -m bench.bench_replication [--docs 2000] [--rounds 3] [--doc-size 256]
                                      [--batch-size 100] [--json]
                                      [--upstream couchdb|pouchdb-server|embedded]
                                      [--mode jwt|proxy|admin] [--keepalive] [--busy] [--floor]

Starts the upstream the flags name (``--upstream couchdb``, the default: ``COUCHDB_URL`` or a
CouchDB release through couchdb-test-server, falling back to pouchdb-server where there is none;
``--upstream embedded``: the embedded store, reached directly at its loopback address; ``--mode``
sets couchgate's upstream auth mode) and a couchgate in front of it (the tests' harness), then,
in one run and rotating the order round by round, has the real PouchDB client
(tests/js/client.mjs under Node) push N documents from an in-memory db into an empty remote db and
pull them back into an empty local one: straight at the upstream as its admin, through
``/db/<app>`` with a device token, and with ``--floor`` through a bare aiohttp pass-through (the
floor of any aiohttp proxy). Prints docs/s for each (median over the rounds), the ratio
gateway/direct with each round's own ratio as the spread, the CPU this process (the gateway)
spent per request it passed on, and the time in couchgate per request class. Timings come from
inside Node and cover the replication only, not Node's start-up. ``--keepalive`` has PouchDB
reuse connections as a browser does; by default it opens one per request, as PouchDB under Node
does.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from typing import Any

from bench import replication_common as common
from bench.pass_through import pass_through


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from gateway.ops.metrics import METRICS
    from tests.pouch import device_remote, direct_remote, run_pouch

    variants = ["direct", "gateway", *(["floor"] if args.floor else [])]
    timings: common.Timings = {name: {"push": [], "pull": []} for name in variants}
    cpu = common.CpuTally()
    async with common.gateway_and_device(args) as (gateway, device, stack):
        upstream = gateway.upstream
        if args.floor:
            floor = await stack.enter_async_context(
                pass_through(upstream.url, upstream.admin_headers())
            )
        for round_no in range(args.rounds):
            tag = f"{round_no}{secrets.token_hex(3)}"
            direct_db, floor_db = f"bench-direct-{tag}", f"bench-floor-{tag}"
            targets = {
                "direct": direct_remote(
                    f"{upstream.url}/{direct_db}", upstream.user, upstream.password
                ),
                "gateway": device_remote(device, f"bench-{tag}"),
            }
            if args.floor:
                targets["floor"] = direct_remote(f"{floor}/{floor_db}", None, None)
            for remote in targets.values():
                remote["keepalive"] = args.keepalive
            # Each round starts with the next variant, so none always goes first.
            order = variants[round_no % len(variants) :] + variants[: round_no % len(variants)]
            for name in order:
                with cpu.counting(name) as counted:
                    out = await run_pouch(
                        "bench",
                        timeout=600,
                        remote=targets[name],
                        count=args.docs,
                        doc_size=args.doc_size,
                        batch_size=args.batch_size,
                    )
                    counted(out["http"]["requests"])
                common.record(timings, name, out, args.docs)
            for db in (direct_db, floor_db, gateway.upstream_db(device, f"bench-{tag}")):
                await asyncio.to_thread(upstream.request, "DELETE", f"/{db}")
        overhead = common.gateway_overhead(gateway.app[METRICS].registry)
        kind = upstream.kind

    floor_ratio = (
        common.summary(args, kind, timings, "floor", "direct")["ratio"] if args.floor else None
    )
    return {
        **common.summary(args, kind, timings, "gateway", "direct"),
        "floor_ratio": floor_ratio,
        "overhead": overhead,
        "cpu_us_per_request": cpu.per_request("gateway", "direct"),
        "floor_cpu_us_per_request": cpu.per_request("floor", "direct") if args.floor else None,
    }


def report(result: dict[str, Any]) -> str:
    title = (
        f"PouchDB replication, {result['docs']} docs of ~{result['doc_size']} B, batch_size "
        f"{result['batch_size']}, median of {result['rounds']} round(s), upstream "
        f"{result['upstream']} ({result['mode']} mode), "
        + ("connections kept alive" if result.get("keepalive") else "a connection per request")
    )
    rows = [("direct to upstream", "direct"), ("through couchgate", "gateway")]
    floor = result.get("floor_ratio")
    floor_line: list[str] = []
    if floor:
        rows.append(("through a bare aiohttp hop", "floor"))
        floor_line.append(
            f"{'ratio bare hop/direct':25}{floor['push']:>12.2f}{floor['pull']:>14.2f}"
        )
    table = common.rate_table(title, rows, "ratio gateway/direct", result)
    return "\n".join(
        [
            table,
            *floor_line,
            *common.cpu_lines(
                result.get("cpu_us_per_request"), result.get("floor_cpu_us_per_request")
            ),
            *common.overhead_lines(result.get("overhead", {})),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = common.replication_flags(__doc__)
    parser.add_argument(
        "--keepalive",
        action="store_true",
        help="PouchDB reuses its connections, as a browser and CouchDB's replicator do (under "
        "Node, PouchDB by default opens a connection per request: node-fetch 2 sends "
        "'Connection: close')",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="a third variant: through a bare aiohttp pass-through (bench/pass_through.py), "
        "the floor of any aiohttp proxy",
    )
    return common.run(measure, report, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
