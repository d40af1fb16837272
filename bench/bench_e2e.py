"""Replication through couchgate with the ep1 plugin vs without: what end-to-end encryption costs.

Usage (from the repository root, after ``npm ci`` in tests/js and encryption_plugin/js):

    python -m bench.bench_e2e [--docs 2000] [--rounds 3] [--doc-size 256]
                              [--batch-size 100] [--json]

Starts the upstream the flags name (``--upstream``, ``--mode``: see bench_replication) and one
couchgate in front of it, whose ``plain-*`` apps are plaintext and every
other app requires the envelope. Then, in one run and alternating the order round by round, the
real PouchDB (tests/js/e2e.mjs under Node) pushes the same N generated documents from an
in-memory db into an empty remote db and pulls them back into an empty local one: once plain,
once sealed by the plugin (and checked by the gateway's guard on the way in). Prints docs/s for
each (median over the rounds) and the ratio sealed/plain. Timings come from inside Node and cover
the replication only.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from typing import Any

from bench import replication_common as common

MODES = ("plain", "sealed")


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from encryption_plugin import Keyring
    from tests.pouch import E2E, run_pouch

    timings: common.Timings = {m: {"push": [], "pull": []} for m in MODES}
    async with common.gateway_and_device(args, plaintext_apps="plain-*") as (gateway, device, _):
        upstream = gateway.upstream
        for round_no in range(args.rounds):
            tag = f"{round_no}{secrets.token_hex(3)}"
            apps = {mode: f"{mode}-{tag}" for mode in MODES}
            keys = {"plain": None, "sealed": Keyring.generate(apps["sealed"]).export()}
            order = MODES if round_no % 2 == 0 else MODES[::-1]
            for mode in order:
                remote = {"url": device.db_url(apps[mode]), "token": device.token}
                out = await run_pouch(
                    "bench",
                    timeout=600,
                    driver=E2E,
                    remote={**remote, "key": keys[mode]},
                    count=args.docs,
                    doc_size=args.doc_size,
                    batch_size=args.batch_size,
                )
                common.record(timings, mode, out, args.docs, ok=not out["e2e_errors"])
            for app in apps.values():
                db = gateway.upstream_db(device, app)
                await asyncio.to_thread(upstream.request, "DELETE", f"/{db}")
        kind = upstream.kind

    return common.summary(args, kind, timings, "sealed", "plain")


def report(result: dict[str, Any]) -> str:
    title = (
        f"PouchDB replication through couchgate, {result['docs']} docs of "
        f"~{result['doc_size']} B, batch_size {result['batch_size']}, median of "
        f"{result['rounds']} round(s), upstream {result['upstream']}"
    )
    rows = [("plaintext", "plain"), ("sealed (ep1 plugin)", "sealed")]
    return common.rate_table(title, rows, "ratio sealed/plain", result)


def main(argv: list[str] | None = None) -> int:
    return common.run(measure, report, common.parse_args(__doc__, argv))


if __name__ == "__main__":
    sys.exit(main())
