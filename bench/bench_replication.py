"""Replication throughput: PouchDB straight to the upstream vs. PouchDB through couchgate.

Usage (from the repository root, after ``npm ci`` in tests/js):

    python -m bench.bench_replication [--docs 2000] [--rounds 3] [--doc-size 256]
                                      [--batch-size 100] [--json]
                                      [--upstream couchdb|pouchdb-server|embedded]
                                      [--mode jwt|proxy|admin] [--keepalive] [--busy]

Starts the upstream the flags name (``--upstream couchdb``, the default: ``COUCHDB_URL`` or a
CouchDB release through couchdb-test-server, falling back to pouchdb-server where there is none;
``--mode`` sets couchgate's upstream auth mode) and a couchgate in front of it (the tests'
harness), then, in one run and alternating the order round by round, has the real PouchDB
client (tests/js/client.mjs under Node) push N documents from an in-memory db into an empty
remote db and pull them back into an empty local one: once straight at the upstream as its
admin, once through ``/db/<app>`` with a device token. Prints docs/s for each (median over the
rounds) and the ratio gateway/direct. Timings come from inside Node and cover the replication
only, not Node's start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from typing import Any

from bench import replication_common as common


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from gateway.metrics import METRICS
    from tests.harness import start_gateway, stop_gateway
    from tests.pouch import device_remote, direct_remote, run_pouch

    timings: common.Timings = {
        "direct": {"push": [], "pull": []},
        "gateway": {"push": [], "pull": []},
    }
    cpu = common.CpuTally()
    with common.bench_upstream(args) as (chosen, settings):
        gateway = await start_gateway(chosen, **settings)
        upstream = gateway.upstream
        try:
            device = await gateway.new_device()
            for round_no in range(args.rounds):
                tag = f"{round_no}{secrets.token_hex(3)}"
                direct_db = f"bench-direct-{tag}"
                targets = {
                    "direct": direct_remote(
                        f"{upstream.url}/{direct_db}", upstream.user, upstream.password
                    ),
                    "gateway": device_remote(device, f"bench-{tag}"),
                }
                for remote in targets.values():
                    remote["keepalive"] = args.keepalive
                order = ["direct", "gateway"] if round_no % 2 == 0 else ["gateway", "direct"]
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
                for db in (direct_db, gateway.upstream_db(device, f"bench-{tag}")):
                    await asyncio.to_thread(upstream.request, "DELETE", f"/{db}")
            overhead = common.gateway_overhead(gateway.app[METRICS].registry)
        finally:
            await stop_gateway(gateway)
        kind = upstream.kind

    return {
        **common.summary(args, kind, timings, "gateway", "direct"),
        "overhead": overhead,
        "cpu_us_per_request": cpu.per_request("gateway", "direct"),
    }


def report(result: dict[str, Any]) -> str:
    title = (
        f"PouchDB replication, {result['docs']} docs of ~{result['doc_size']} B, batch_size "
        f"{result['batch_size']}, median of {result['rounds']} round(s), upstream "
        f"{result['upstream']} ({result['mode']} mode), "
        + ("connections kept alive" if result.get("keepalive") else "a connection per request")
    )
    rows = [("direct to upstream", "direct"), ("through couchgate", "gateway")]
    table = common.rate_table(title, rows, "ratio gateway/direct", result)
    return "\n".join(
        [
            table,
            *common.cpu_lines(result.get("cpu_us_per_request")),
            *common.overhead_lines(result.get("overhead", {})),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    return common.run(measure, report, common.parse_args(__doc__, argv))


if __name__ == "__main__":
    sys.exit(main())
