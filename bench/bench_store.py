"""Replication throughput of the embedded store next to pouchdb-server, measured in one run.

Real PouchDB under Node (``tests/store/pouchdb_driver.mjs``, in-memory client databases) pushes
N documents of ~1 KB to a fresh remote database, then pulls them into a fresh local one. The same
driver runs against the embedded store (``python -m gateway.store``, SQLite, fsync per commit) and
against pouchdb-server (``--in-memory``: no disk at all, so the ratio flatters it), and prints
docs/s for each and the ratio store/pouchdb-server.

    python bench/bench_store.py [--docs 10000] [--timeout 300]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.store.helpers import DRIVER, running_store  # noqa: E402
from tests.upstreams import pouchdb_server  # noqa: E402


def _create_db(url: str, user: str, password: str) -> None:
    import base64

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(url, method="PUT", headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(req, timeout=30):
        pass


def run(db_url: str, user: str, password: str, docs: int, timeout: float) -> dict[str, Any]:
    _create_db(db_url, user, password)
    done = subprocess.run(
        ["node", str(DRIVER), "bench", db_url, user, password, str(docs)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"driver failed against {db_url}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    if result["pushed"] != docs or result["pulled"] != docs:
        raise RuntimeError(f"incomplete replication against {db_url}: {result}")
    return result


def rates(result: dict[str, Any], docs: int) -> tuple[float, float]:
    return docs / (result["push_ms"] / 1000), docs / (result["pull_ms"] / 1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per server")
    args = parser.parse_args(argv)

    with (
        tempfile.TemporaryDirectory(prefix="couchgate-bench-") as tmp,
        running_store(Path(tmp) / "data") as store,
    ):
        embedded = run(store.url + "/bench", store.user, store.password, args.docs, args.timeout)
    with pouchdb_server() as ref:
        assert ref.user is not None and ref.password is not None
        reference = run(ref.url + "/bench", ref.user, ref.password, args.docs, args.timeout)

    store_push, store_pull = rates(embedded, args.docs)
    ref_push, ref_pull = rates(reference, args.docs)
    print(f"{args.docs} docs of ~1 KB, PouchDB {'push':>6} {'pull':>8}   (docs/s)")
    print(f"embedded store (SQLite, fsync)   {store_push:8.0f} {store_pull:8.0f}")
    print(f"pouchdb-server (in memory)       {ref_push:8.0f} {ref_pull:8.0f}")
    push_ratio, pull_ratio = store_push / ref_push, store_pull / ref_pull
    print(f"ratio store / pouchdb-server     {push_ratio:8.2f} {pull_ratio:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
