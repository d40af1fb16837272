"""The embedded store beside Apache CouchDB and pouchdb-server, measured in one run.

Real PouchDB under Node (``tests/store/pouchdb_driver.mjs``, in-memory client databases) pushes
N documents of ~1 KB to a fresh remote database, pulls them into a fresh local one, then two
clients in live sync measure how long a write on one takes to appear on the other. The same
driver runs against the embedded store (``python -m couchlite``: SQLite, fsync per commit),
against CouchDB (``COUCHDB_URL``, skipped with a note when unset) and against pouchdb-server
(``--in-memory``: no disk at all, so the ratio flatters it).

Then size on disk: 1,000 documents edited 10 times each (10,000 edits, ~1 KB bodies) on the
store and on CouchDB; the store's file before and after ``couchgate store compact``, CouchDB's
database files before and after its own ``_compact``.

    python bench/bench_store.py [--docs 10000] [--timeout 600]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.store.helpers import DRIVER, compact, running_store  # noqa: E402
from tests.upstreams import Upstream, couchdb_from_env, pouchdb_server  # noqa: E402

SIZE_DOCS, SIZE_EDITS = 1_000, 10


class Server:
    """A CouchDB-speaking server reached as its admin with blocking calls (bench only)."""

    def __init__(self, name: str, url: str, user: str, password: str) -> None:
        self.name, self.url, self.user, self.password = name, url, user, password
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers=self.headers
        )
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read() or b"null")


def drive(server: Server, scenario: str, db: str, docs: int, timeout: float) -> dict[str, Any]:
    server.call("PUT", f"/{db}")
    done = subprocess.run(
        [
            "node",
            str(DRIVER),
            scenario,
            f"{server.url}/{db}",
            server.user,
            server.password,
            str(docs),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"driver {scenario} failed on {server.name}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def replication(server: Server, docs: int, timeout: float) -> dict[str, float]:
    """Push and pull rates and the median live-sync latency, in fresh databases (the CouchDB
    may be shared: they are deleted afterwards)."""
    suffix = f"{os.getpid()}-{int(time.time())}"
    bench = drive(server, "bench", f"bench-{suffix}", docs, timeout)
    if bench["pushed"] != docs or bench["pulled"] != docs:
        raise RuntimeError(f"incomplete replication on {server.name}: {bench}")
    live = drive(server, "live", f"live-{suffix}", 1, timeout)
    for db in (f"bench-{suffix}", f"live-{suffix}"):
        server.call("DELETE", f"/{db}")
    return {
        "push": docs / (bench["push_ms"] / 1000),
        "pull": docs / (bench["pull_ms"] / 1000),
        "live_ms": float(statistics.median(live["latencies"])),
    }


def edit_history(server: Server, db: str) -> None:
    """``SIZE_DOCS`` documents, each written ``SIZE_EDITS`` times, in batches of 1,000."""
    server.call("PUT", f"/{db}")
    revs: dict[str, str] = {}
    for edit in range(SIZE_EDITS):
        docs = []
        for n in range(SIZE_DOCS):
            doc_id = f"doc-{n:05d}"
            doc: dict[str, Any] = {"_id": doc_id, "edit": edit, "filler": os.urandom(450).hex()}
            if doc_id in revs:
                doc["_rev"] = revs[doc_id]
            docs.append(doc)
        for row in server.call("POST", f"/{db}/_bulk_docs", {"docs": docs}):
            revs[row["id"]] = row["rev"]


def store_size(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.glob("store.sqlite3*"))


def store_sizes(server: Server, data_dir: Path) -> tuple[int, int]:
    edit_history(server, "sizes")
    before = store_size(data_dir)
    done = compact(data_dir, 600)
    if done.returncode != 0:
        raise RuntimeError(f"couchgate store compact failed: {done.stderr[-2000:]}")
    return before, store_size(data_dir)


def couchdb_sizes(server: Server) -> tuple[int, int]:
    db = f"bench-sizes-{os.getpid()}-{int(time.time())}"
    edit_history(server, db)
    before = int(server.call("GET", f"/{db}")["sizes"]["file"])
    server.call("POST", f"/{db}/_compact", {})
    # CouchDB compacts each shard in the background: done when none runs and the size holds.
    last = -1
    while True:
        time.sleep(1)
        info = server.call("GET", f"/{db}")
        size = int(info["sizes"]["file"])
        if not info["compact_running"] and size == last:
            break
        last = size
    after = size
    server.call("DELETE", f"/{db}")
    return before, after


def as_server(name: str, up: Upstream) -> Server:
    assert up.user is not None and up.password is not None
    return Server(name, up.url, up.user, up.password)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per driver run")
    args = parser.parse_args(argv)

    rows: dict[str, dict[str, float]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory(prefix="couchgate-bench-") as tmp:
        data_dir = Path(tmp) / "replication"
        with running_store(data_dir) as proc:
            store = Server("embedded store", proc.url, proc.user, proc.password)
            rows["embedded store (SQLite, fsync)"] = replication(store, args.docs, args.timeout)
        sizes_dir = Path(tmp) / "sizes"  # its own file: nothing else in it
        with running_store(sizes_dir) as proc:
            store = Server("embedded store", proc.url, proc.user, proc.password)
            sizes["embedded store"] = store_sizes(store, sizes_dir)
    couch_up = couchdb_from_env()
    if couch_up is not None:
        couch = as_server("CouchDB", couch_up)
        label = f"Apache CouchDB {couch.call('GET', '/')['version']}"
        rows[label] = replication(couch, args.docs, args.timeout)
        sizes[label] = couchdb_sizes(couch)
    else:
        print("(COUCHDB_URL not set: CouchDB not measured)")
    with pouchdb_server() as ref:
        rows["pouchdb-server (in memory)"] = replication(
            as_server("pouchdb-server", ref), args.docs, args.timeout
        )

    width = max(len(label) for label in rows) + 2
    print(f"{args.docs} docs of ~1 KB through PouchDB")
    print(f"{'':{width}}{'push docs/s':>12}{'pull docs/s':>13}{'live ms':>9}")
    for label, row in rows.items():
        print(f"{label:{width}}{row['push']:>12.0f}{row['pull']:>13.0f}{row['live_ms']:>9.0f}")
    print(f"\nsize on disk after {SIZE_DOCS * SIZE_EDITS:,} edits of {SIZE_DOCS:,} documents")
    print(f"{'':{width}}{'before':>12}{'compacted':>13}")
    for label, (before, after) in sizes.items():
        print(f"{label:{width}}{before / 1e6:>10.1f}MB{after / 1e6:>11.1f}MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
