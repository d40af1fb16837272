"""Idle live feeds: what N waiting feeds cost one couchgate process, held by couchgate
(multiplexed on one ``_db_updates`` watch) or forwarded one upstream request each, and how soon
one write reaches every feed of its database.

Usage (from the repository root):

    python -m bench.bench_feeds [--feeds 1000] [--dbs 100] [--shape longpoll|continuous]
                                [--upstream couchdb|embedded] [--writes 3] [--json]

Starts ``couchgate serve`` as its own process (on a CouchDB found as the tests find one, in
``jwt`` mode, or on its embedded store), once with feed multiplexing on and once off, provisions
``--dbs`` app databases for one device, and opens ``--feeds`` live feeds spread evenly over them
in PouchDB's own shape (``feed=longpoll&heartbeat=30000&since=<seq>``) or continuous. Once every
feed is open it reports, side by side: the gateway process's RSS and its growth per feed, its
file descriptors, its connections to the upstream, and for ``--writes`` writes (each to another
database) the time from the write until every feed of that database has its row
(p50/p99/max over all those feeds), beside the same for one feed straight to CouchDB (the floor).
Loopback only; everything it starts it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--dbs", type=int, default=100)
    parser.add_argument("--shape", choices=["longpoll", "continuous"], default="longpoll")
    parser.add_argument("--upstream", choices=["couchdb", "embedded"], default="couchdb")
    parser.add_argument("--writes", type=int, default=3)
    parser.add_argument(
        "--modes", default="multiplexed,forwarded", help="which of multiplexed,forwarded to run"
    )
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


@asynccontextmanager
async def served(env: dict[str, str]) -> AsyncIterator[tuple[str, psutil.Process, str]]:
    """A gateway with these settings, and a device token of one account on it."""
    from tests.served import enroll, serve_env, serving
    from tests.upstreams import free_port

    port = free_port()
    full = serve_env(**env)
    with tempfile.TemporaryDirectory(prefix="couchgate-bench-feeds-") as tmp:
        async with serving(port, full, Path(tmp) / "serve.log") as proc:
            url = f"http://127.0.0.1:{port}"
            token = await enroll(url, full, "bench@example.org", "bench")
            yield url, psutil.Process(proc.pid), token


def upstream_connections(proc: psutil.Process, gateway_port: int) -> int:
    """TCP connections the gateway process opened to someone else (its upstream)."""
    listening = {c.laddr.port for c in proc.net_connections("tcp") if c.status == "LISTEN"}
    return sum(
        1
        for c in proc.net_connections("tcp")
        if c.status == "ESTABLISHED"
        and c.raddr
        and c.laddr.port not in listening
        and c.raddr.port != gateway_port
    )


ARRIVED = asyncio.Event()  # set whenever any feed gets a row


class Feed:
    def __init__(self, db_index: int) -> None:
        self.db_index = db_index
        self.seen: dict[str, float] = {}
        self.open = asyncio.Event()


async def run_feed(
    session: aiohttp.ClientSession, url: str, feed: Feed, shape: str, since: Any
) -> None:
    """One client feed, reopened after each long-poll answer as PouchDB does."""
    while True:
        query = f"feed={shape}&heartbeat=30000&since={since}"
        async with session.get(url + "/_changes?" + query) as r:
            if r.status != 200:
                raise RuntimeError(f"feed answered {r.status}: {await r.text()}")
            feed.open.set()
            if shape == "continuous":
                async for line in r.content:
                    if line.strip():
                        row = json.loads(line)
                        if "id" in row:
                            feed.seen.setdefault(row["id"], time.monotonic())
                            ARRIVED.set()
                return
            answer = json.loads(await r.read())
            for row in answer["results"]:
                feed.seen.setdefault(row["id"], time.monotonic())
            ARRIVED.set()
            since = answer["last_seq"]


async def measure_mode(args: argparse.Namespace, mode: str, upstream_env: dict[str, str]) -> Any:
    env = {
        **upstream_env,
        "COUCHGATE_FEED_MULTIPLEXING": "true" if mode == "multiplexed" else "false",
        "COUCHGATE_FEEDS_PER_DEVICE": "0",
        "COUCHGATE_FEEDS_PER_USER": "0",
        "COUCHGATE_APPS_PER_USER": "0",
        "COUCHGATE_DEVICE_REQUESTS_PER_MINUTE": "0",
        "COUCHGATE_PLAINTEXT_APPS": "*",
        "COUCHGATE_RECORDS_DB": f"bench-feeds-{secrets.token_hex(4)}",
    }
    if "COUCHGATE_UPSTREAM_URL" not in env:
        env["COUCHGATE_DATA_DIR"] = tempfile.mkdtemp(prefix="couchgate-bench-feeds-data-")
    async with served(env) as (url, proc, token):
        port = int(url.rsplit(":", 1)[1])
        headers = {"Authorization": f"Bearer {token}"}
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=None)
        async with aiohttp.ClientSession(
            headers=headers, connector=connector, timeout=timeout
        ) as session:
            apps = [f"feeds{i}" for i in range(args.dbs)]
            seqs = {}
            for app in apps:
                async with session.put(f"{url}/db/{app}/") as r:
                    assert r.status in (201, 412), await r.text()
                async with session.get(f"{url}/db/{app}") as r:
                    seqs[app] = (await r.json())["update_seq"]
            await asyncio.sleep(1)
            rss_before = proc.memory_info().rss
            feeds = [Feed(i % args.dbs) for i in range(args.feeds)]
            tasks = []
            for feed in feeds:
                app = apps[feed.db_index]
                tasks.append(
                    asyncio.ensure_future(
                        run_feed(session, f"{url}/db/{app}", feed, args.shape, seqs[app])
                    )
                )
            opened = asyncio.gather(*(feed.open.wait() for feed in feeds))
            failed = asyncio.ensure_future(asyncio.wait(tasks, return_when="FIRST_EXCEPTION"))
            # Only waited on, never read: their result types differ.
            either: set[asyncio.Future[Any]] = {opened, failed}
            await asyncio.wait(either, return_when="FIRST_COMPLETED", timeout=600)
            broken = [t for t in tasks if t.done() and t.exception() is not None]
            if broken:
                for task in tasks:
                    task.cancel()
                failed.cancel()
                opened.cancel()
                error = broken[0].exception()
                return {
                    "mode": mode,
                    "error": f"{type(error).__name__}: {error}"[:200],
                    "opened": sum(f.open.is_set() for f in feeds),
                }
            await asyncio.sleep(2)  # let the gateway settle (a long poll's first read, say)
            rss_after = proc.memory_info().rss
            figures: dict[str, Any] = {
                "mode": mode,
                "rss_mb": rss_after / 2**20,
                "kb_per_feed": (rss_after - rss_before) / 1024 / args.feeds,
                "fds": proc.num_fds(),
                "upstream_connections": upstream_connections(proc, port),
            }
            delays: list[float] = []
            for w in range(args.writes):
                db_index = (w * 7) % args.dbs
                doc = f"w{w}"
                started = time.monotonic()
                async with session.put(f"{url}/db/{apps[db_index]}/{doc}", json={"w": w}) as r:
                    assert r.status == 201, await r.text()
                waiting = [f for f in feeds if f.db_index == db_index]
                deadline = time.monotonic() + 60
                while not all(doc in f.seen for f in waiting) and time.monotonic() < deadline:
                    ARRIVED.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ARRIVED.wait(), timeout=1)
                delays += [(f.seen.get(doc, deadline) - started) * 1000 for f in waiting]
            figures.update(_percentiles(delays))
            failed.cancel()
            opened.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return figures


def _percentiles(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max_ms": ordered[-1],
    }


async def direct_floor(couchdb: Any, writes: int) -> dict[str, float]:
    """One long poll straight to CouchDB as its admin: write-to-row time, the floor."""
    db = f"bench-feeds-direct-{secrets.token_hex(4)}"
    base = f"{couchdb.url}/{db}"
    delays = []
    async with aiohttp.ClientSession(headers=couchdb.admin_headers()) as session:
        await (await session.put(base)).read()
        for w in range(writes):
            async with session.get(base) as r:
                seq = (await r.json())["update_seq"]
            poll = asyncio.ensure_future(
                session.get(f"{base}/_changes?feed=longpoll&heartbeat=30000&since={seq}")
            )
            await asyncio.sleep(0.3)
            started = time.monotonic()
            await (await session.put(f"{base}/w{w}", json={})).read()
            await (await poll).read()
            delays.append((time.monotonic() - started) * 1000)
        await (await session.delete(base)).read()
    return _percentiles(delays)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from tests.upstreams import apache_couchdb

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results: dict[str, Any] = {"feeds": args.feeds, "dbs": args.dbs, "shape": args.shape}
    with apache_couchdb() if args.upstream == "couchdb" else contextlib.nullcontext() as couchdb:
        if args.upstream == "couchdb":
            if couchdb is None:
                raise SystemExit("no CouchDB found (COUCHDB_URL or couchdb-test-server)")
            upstream_env = {
                "COUCHGATE_UPSTREAM_URL": couchdb.url,
                "COUCHGATE_UPSTREAM_USER": couchdb.user or "",
                "COUCHGATE_UPSTREAM_PASSWORD": couchdb.password or "",
                "COUCHGATE_UPSTREAM_AUTH": "jwt",
                "COUCHGATE_UPSTREAM_JWT_SECRET": couchdb.jwt_secret or "",
            }
            results["direct"] = await direct_floor(couchdb, args.writes)
        else:
            upstream_env = {}
        results["upstream"] = args.upstream
        for mode in args.modes.split(","):
            results[mode] = await measure_mode(args, mode, upstream_env)
    return results


def report(r: dict[str, Any]) -> str:
    lines = [
        f"{r['feeds']} idle {r['shape']} feeds over {r['dbs']} databases, upstream {r['upstream']}",
        f"{'':14}{'RSS MB':>8}{'KB/feed':>9}{'fds':>7}{'upstream':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}",
    ]
    for mode in ("multiplexed", "forwarded"):
        f = r.get(mode)
        if f is None:
            continue
        if "error" in f:
            lines.append(f"{mode:14}failed after {f['opened']} feeds: {f['error']}")
            continue
        lines.append(
            f"{mode:14}{f['rss_mb']:>8.0f}{f['kb_per_feed']:>9.1f}{f['fds']:>7}"
            f"{f['upstream_connections']:>10}{f['p50_ms']:>9.0f}{f['p99_ms']:>9.0f}"
            f"{f['max_ms']:>9.0f}"
        )
    if "direct" in r:
        d = r["direct"]
        lines.append(
            f"{'direct (1)':14}{'':>8}{'':>9}{'':>7}{'':>10}{d['p50_ms']:>9.0f}"
            f"{d['p99_ms']:>9.0f}{d['max_ms']:>9.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    args = parse_args(argv)
    result = asyncio.run(measure(args))
    print(json.dumps(result) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
