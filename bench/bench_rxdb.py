"""RxDB's first sync through couchgate, sealed by the ep1 plugin's ``sealedFetch`` vs plaintext,
beside PouchDB with the ep1 plugin: what end-to-end encryption costs an RxDB app.

Usage (from the repository root, after ``npm ci`` in tests/js and encryption_plugin/js):

    python -m bench.bench_rxdb [--docs 10000] [--rounds 1] [--doc-size 1024]
                               [--batch-size 100] [--json]

Starts the upstream the flags name (``--upstream``, ``--mode``: see bench_replication) and one
couchgate in front of it, whose ``plain-*`` apps are plaintext and every other app requires the
envelope. Then, alternating the order round by round, N generated documents go up from a fresh
device and down into another: real RxDB 17 on its Dexie storage over fake-indexeddb
(tests/js/rxdb.mjs; the timed part is a device's first one-shot ``replicateCouchDB`` run, from
its start until ``awaitInitialReplication``), plaintext and sealed, and real PouchDB with the
plugin (tests/js/e2e.mjs, a push and a pull). Prints docs/s for each (median over the rounds)
and the ratio RxDB sealed / RxDB plaintext, whose target is 0.8 or more.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from typing import Any

from bench import replication_common as common

VARIANTS = ("rxdb-plain", "rxdb-sealed", "pouchdb-sealed")


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from encryption_plugin import Keyring
    from tests.pouch import E2E, JS_DIR, run_pouch

    timings: common.Timings = {v: {"push": [], "pull": []} for v in VARIANTS}
    async with common.gateway_and_device(args, plaintext_apps="plain-*") as (gateway, device, _):
        upstream = gateway.upstream
        for round_no in range(args.rounds):
            order = VARIANTS if round_no % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                sealed = variant.endswith("sealed")
                app = f"{'sealed' if sealed else 'plain'}-{round_no}{secrets.token_hex(3)}"
                key = Keyring.generate(app).export() if sealed else None
                remote = {"url": device.db_url(app), "token": device.token, "key": key}
                out = await run_pouch(
                    "bench",
                    timeout=1800,
                    driver=E2E if variant.startswith("pouchdb") else JS_DIR / "rxdb.mjs",
                    remote=remote,
                    count=args.docs,
                    doc_size=args.doc_size,
                    batch_size=args.batch_size,
                )
                common.record(timings, variant, out, args.docs, ok=not out["e2e_errors"])
                db = gateway.upstream_db(device, app)
                await asyncio.to_thread(upstream.request, "DELETE", f"/{db}")
        kind = upstream.kind

    return common.summary(args, kind, timings, "rxdb-sealed", "rxdb-plain")


def report(result: dict[str, Any]) -> str:
    title = (
        f"First sync through couchgate, {result['docs']} docs of ~{result['doc_size']} B, "
        f"batch size {result['batch_size']}, median of {result['rounds']} round(s), "
        f"upstream {result['upstream']}"
    )
    rows = [
        ("RxDB (Dexie) plaintext", "rxdb-plain"),
        ("RxDB (Dexie) sealed", "rxdb-sealed"),
        ("PouchDB + ep1 plugin", "pouchdb-sealed"),
    ]
    return common.rate_table(title, rows, "ratio RxDB sealed/plain", result)


def main(argv: list[str] | None = None) -> int:
    parser = common.replication_flags(__doc__)
    parser.set_defaults(docs=10_000, rounds=1, doc_size=1024)
    return common.run(measure, report, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
