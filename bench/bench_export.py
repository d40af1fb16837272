"""Export and import of one person's data: throughput and the server's peak memory.

Two ``couchgate serve`` processes on their embedded stores (SQLite, in the same process as the
gateway): N sealed documents of ~1 KB (``encryption_plugin.seal_doc``) are loaded into the first
through ``_bulk_docs``; ``GET /account/api/export`` streams them to a file; ``POST
/account/api/import`` streams that file into the second. The RSS of the serving process is
sampled every 10 ms during each transfer; the figure is its peak above the level before. Run at
two sizes, so a memory figure that grows with N shows.

    python bench/bench_export.py [--docs 10000] [--small 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
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
sys.path.insert(0, str(ROOT))

import encryption_plugin as ep  # noqa: E402
from gateway.archive.files import file_chunks  # noqa: E402
from tests.served import enroll, serve_env, serving  # noqa: E402
from tests.upstreams import free_port  # noqa: E402

APP = "notes"
BATCH = 500


@asynccontextmanager
async def served(data_dir: Path) -> AsyncIterator[tuple[str, psutil.Process, str]]:
    """A gateway on its own embedded store, and a device token of one account on it."""
    port = free_port()
    env = serve_env(COUCHGATE_DATA_DIR=str(data_dir), COUCHGATE_LOG_LEVEL="WARNING")
    async with serving(port, env, data_dir.with_suffix(".log")) as proc:
        url = f"http://127.0.0.1:{port}"
        token = await enroll(url, env, f"bench-{secrets.token_hex(3)}@example.org", "bench")
        yield url, psutil.Process(proc.pid), token


class PeakRss:
    """The highest RSS of a process while the block runs, sampled every 10 ms."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc = proc
        self.before = proc.memory_info().rss
        self.peak = self.before
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            await asyncio.sleep(0.01)

    async def __aenter__(self) -> PeakRss:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.peak = max(self.peak, self.proc.memory_info().rss)


async def load(session: aiohttp.ClientSession, url: str, token: str, docs: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with session.put(f"{url}/db/{APP}/", headers=headers) as r:
        assert r.status == 201, await r.text()
    keyring = ep.Keyring.generate(APP)
    filler = "x" * 900
    for start in range(0, docs, BATCH):
        batch = [
            ep.seal_doc({"_id": f"note-{i:06d}", "text": f"{i} {filler}"}, keyring)
            for i in range(start, min(docs, start + BATCH))
        ]
        async with session.post(
            f"{url}/db/{APP}/_bulk_docs", headers=headers, json={"docs": batch}
        ) as r:
            assert r.status == 201, await r.text()


async def measure(docs: int, tmp: Path) -> dict[str, Any]:
    archive = tmp / f"export-{docs}.ndjson"
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with served(tmp / f"source-{docs}") as (url, proc, token):
            await load(session, url, token, docs)
            headers = {"Authorization": f"Bearer {token}"}
            async with PeakRss(proc) as rss_out:
                start = time.perf_counter()
                size = 0
                async with session.get(f"{url}/account/api/export", headers=headers) as r:
                    assert r.status == 200
                    with archive.open("wb") as out:
                        async for chunk in r.content.iter_chunked(1 << 20):
                            out.write(chunk)
                            size += len(chunk)
                export_s = time.perf_counter() - start
        async with served(tmp / f"target-{docs}") as (url, proc, token):
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
            async with PeakRss(proc) as rss_in:
                start = time.perf_counter()
                async with session.post(
                    f"{url}/account/api/import", headers=headers, data=file_chunks(archive)
                ) as r:
                    report = await r.json()
                    assert r.status == 200, report
                import_s = time.perf_counter() - start
            assert report["loaded"] == {APP: docs}, report
    return {
        "docs": docs,
        "archive_mb": size / 2**20,
        "export_docs_s": docs / export_s,
        "export_mb_s": size / 2**20 / export_s,
        "export_rss_mb": rss_out.before / 2**20,
        "export_peak_extra_mb": (rss_out.peak - rss_out.before) / 2**20,
        "import_docs_s": docs / import_s,
        "import_rss_mb": rss_in.before / 2**20,
        "import_peak_extra_mb": (rss_in.peak - rss_in.before) / 2**20,
    }


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'docs':>7} {'archive':>9} {'export':>10} {'':>8} {'peak +RSS':>10}"
        f" {'import':>10} {'peak +RSS':>10}",
    ]
    for r in rows:
        lines.append(
            f"{r['docs']:>7} {r['archive_mb']:>7.1f}MB {r['export_docs_s']:>6.0f}/s"
            f" {r['export_mb_s']:>6.1f}MB/s {r['export_peak_extra_mb']:>8.1f}MB"
            f" {r['import_docs_s']:>8.0f}/s {r['import_peak_extra_mb']:>8.1f}MB"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=2_000, help="the smaller run (0: none)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = [n for n in (args.small, args.docs) if n]
    with tempfile.TemporaryDirectory(prefix="couchgate-bench-export-") as tmp:
        rows = [asyncio.run(measure(n, Path(tmp))) for n in sizes]
    print(json.dumps(rows) if args.json else report(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
