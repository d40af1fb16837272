"""RxDB's first sync through couchgate, sealed by the ep1 plugin's ``sealedFetch`` vs plaintext,
beside PouchDB with the ep1 plugin: what end-to-end encryption costs an RxDB app.

Usage (from the repository root, after ``npm ci`` in tests/js and encryption_plugin/js):

    python -m bench.bench_rxdb [--docs 10000] [--rounds 1] [--doc-size 1024]
                               [--batch-size 100] [--where chromium|node] [--json]

Starts the upstream the flags name (``--upstream``, ``--mode``: see bench_replication) and one
couchgate in front of it, whose ``plain-*`` apps are plaintext and every other app requires the
envelope. Then, alternating the order round by round, N generated documents go up from a fresh
device and down into another: real RxDB 17 on its Dexie storage, plaintext and sealed (the timed
part is a device's first one-shot ``replicateCouchDB`` run, from its start until
``awaitInitialReplication``), and real PouchDB with the plugin under Node (tests/js/e2e.mjs,
memory adapter, a push and a pull). Prints docs/s for each (median over the rounds), the ratio
RxDB sealed / RxDB plaintext, whose target is 0.8 or more, and the machine's load average.

RxDB runs where its users run it (``--where chromium``, the default): Debian's Chromium driven
by Playwright, over the browser's real IndexedDB (tests/js/rxdb-browser.mjs, one fresh browser
context per variant). ``--where node`` runs it under Node over fake-indexeddb (tests/js/rxdb.mjs),
whose every cursor step searches its record tree again: its syncs time close to Chromium's,
but the run around them is far longer (14 minutes at 10,000 on a loaded machine, against 5).

The writer stores its notes a batch at a time, as an app writes them over time. Stored in one
``bulkInsert`` they would all carry one write time, and RxDB's push finds each batch by walking
that run of equal times from its start (its ``getChangedDocumentsSince`` query): a cost of RxDB's
own that grows with the square of the count (52 docs/s pushed at 10,000 in Chromium, a few under
Node) and that sealing does not touch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import replication_common as common

VARIANTS = ("rxdb-plain", "rxdb-sealed", "pouchdb-sealed")


# One variant's first sync: (variant, remote) -> the driver's output ({"result": {push, pull},
# "e2e_errors": [...]}).
RunRxdb = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


@contextlib.asynccontextmanager
async def rxdb_in_chromium(
    gateway_url: str, docs: int, args: argparse.Namespace
) -> AsyncIterator[RunRxdb]:
    """RxDB runs in Chromium: each variant in a fresh browser context (its own IndexedDB)."""
    from playwright.async_api import async_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.browser.rxdb_page import bundle, open_page

    with tempfile.TemporaryDirectory(prefix="bench-rxdb-") as tmp:
        module = await asyncio.to_thread(bundle, Path(tmp) / "app.js")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

            async def run(variant: str, remote: dict[str, Any]) -> dict[str, Any]:
                context, page = await open_page(browser, gateway_url, module, variant)
                spec = {
                    **remote,
                    "count": docs,
                    "doc_size": args.doc_size,
                    "batch_size": args.batch_size,
                }
                # With --cpu-profile, the page's CPU profile over its run, as DevTools takes it.
                cdp = await context.new_cdp_session(page) if args.cpu_profile else None
                try:
                    if cdp is not None:
                        await cdp.send("Profiler.enable")
                        await cdp.send("Profiler.start")
                    out = await page.evaluate("spec => window.device.bench(spec)", spec)
                    if cdp is not None:
                        profile = (await cdp.send("Profiler.stop"))["profile"]
                        args.cpu_profile.mkdir(parents=True, exist_ok=True)
                        path = args.cpu_profile / f"{variant}.cpuprofile"
                        path.write_text(json.dumps(profile))
                finally:
                    await context.close()
                return {"result": out, "e2e_errors": out["e2e_errors"]}

            try:
                yield run
            finally:
                await browser.close()


@contextlib.asynccontextmanager
async def rxdb_in_node(docs: int, args: argparse.Namespace) -> AsyncIterator[RunRxdb]:
    """RxDB runs under Node over fake-indexeddb (tests/js/rxdb.mjs), a process per variant."""
    from tests.pouch import JS_DIR

    async def run(_: str, remote: dict[str, Any]) -> dict[str, Any]:
        return await node_bench(JS_DIR / "rxdb.mjs", remote, args)

    yield run


async def node_bench(
    driver: Path, remote: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """The ``bench`` command of a Node driver of tests/js, run to its end."""
    from tests.pouch import run_pouch

    return await run_pouch(
        "bench",
        timeout=1800,
        driver=driver,
        remote=remote,
        count=args.docs,
        doc_size=args.doc_size,
        batch_size=args.batch_size,
    )


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from encryption_plugin import Keyring
    from tests.pouch import E2E

    timings: common.Timings = {v: {"push": [], "pull": []} for v in VARIANTS}
    load_before = os.getloadavg()
    async with common.gateway_and_device(args, plaintext_apps="plain-*") as (gateway, device, _):
        upstream = gateway.upstream
        rxdb = (
            rxdb_in_chromium(gateway.url, args.docs, args)
            if args.where == "chromium"
            else rxdb_in_node(args.docs, args)
        )
        async with rxdb as run_rxdb:
            for round_no in range(args.rounds):
                order = VARIANTS if round_no % 2 == 0 else VARIANTS[::-1]
                for variant in order:
                    sealed = variant.endswith("sealed")
                    app = f"{'sealed' if sealed else 'plain'}-{round_no}{secrets.token_hex(3)}"
                    key = Keyring.generate(app).export() if sealed else None
                    remote = {"url": device.db_url(app), "token": device.token, "key": key}
                    if variant.startswith("pouchdb"):
                        out = await node_bench(E2E, remote, args)
                    else:
                        out = await run_rxdb(variant, remote)
                    common.record(timings, variant, out, args.docs, ok=not out["e2e_errors"])
                    db = gateway.upstream_db(device, app)
                    await asyncio.to_thread(upstream.request, "DELETE", f"/{db}")
        kind = upstream.kind

    result = common.summary(args, kind, timings, "rxdb-sealed", "rxdb-plain")
    result["where"] = args.where
    result["load_average"] = {"before": load_before, "after": os.getloadavg()}
    return result


def report(result: dict[str, Any]) -> str:
    title = (
        f"First sync through couchgate, {result['docs']} docs of ~{result['doc_size']} B, "
        f"batch size {result['batch_size']}, median of {result['rounds']} round(s), "
        f"upstream {result['upstream']}, RxDB in {result['where']}"
    )
    rows = [
        ("RxDB (Dexie) plaintext", "rxdb-plain"),
        ("RxDB (Dexie) sealed", "rxdb-sealed"),
        ("PouchDB + ep1 (Node)", "pouchdb-sealed"),
    ]
    load = result["load_average"]
    spread = (
        " ".join(f"{x:.1f}" for x in load["before"]),
        " ".join(f"{x:.1f}" for x in load["after"]),
    )
    table = common.rate_table(title, rows, "ratio RxDB sealed/plain", result)
    return f"{table}\nload average (1, 5, 15 min) before: {spread[0]}, after: {spread[1]}"


def main(argv: list[str] | None = None) -> int:
    parser = common.replication_flags(__doc__)
    parser.set_defaults(docs=10_000, rounds=1, doc_size=1024)
    parser.add_argument(
        "--where",
        choices=["chromium", "node"],
        default="chromium",
        help="where RxDB runs: Chromium over real IndexedDB (what users run), or Node over "
        "fake-indexeddb",
    )
    parser.add_argument(
        "--cpu-profile",
        type=Path,
        metavar="DIR",
        help="with --where chromium: write each RxDB variant's CPU profile (DevTools' "
        ".cpuprofile) into DIR",
    )
    return common.run(measure, report, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
