"""``couchgate store compact [--data-dir D]``: compact the embedded store's file from the CLI.

Safe while ``couchgate serve`` runs on the same directory: SQLite's locking orders the two
writers, and the server's feeds wake at once through its ``data_version`` poll.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from couchlite.storage import compact_file
from gateway import helptext

STORE_FILE = "store.sqlite3"


def add_parser(commands: Any) -> None:
    """Add the ``store`` group to the CLI's sub-parsers."""
    store = helptext.group(
        commands,
        "store",
        "look after the embedded store",
        "Maintenance of the embedded store (the SQLite file couchgate serves when no CouchDB is\n"
        "configured). Safe while couchgate serve runs on the same data directory.",
        "couchgate store compact --data-dir ~/.local/share/couchgate",
    )
    compact = helptext.command(
        store,
        "compact",
        "free old revision bodies and unreferenced attachments",
        "Compact the store now: bodies of revisions that are no longer leaves and attachment\n"
        "bodies nothing refers to are freed, then the file is rewritten smaller. The server\n"
        "also does this by itself every 2,000 writes or hourly, without the rewrite.",
        "couchgate store compact",
    )
    compact.add_argument("--data-dir", help="directory of the embedded store's data")


def run(args: argparse.Namespace, default_data_dir: Path) -> int:
    """Run ``store ACTION``; 0 on success, 2 (one line on stderr) when there is no store."""
    directory = Path(args.data_dir) if args.data_dir else default_data_dir
    path = directory / STORE_FILE
    if not path.exists():
        return helptext.fail(f"no embedded store in {directory}")
    before = _size(path)
    freed = compact_file(path)
    after = _size(path)
    print(
        f"compacted: {freed.bodies} old revision bodies and {freed.blobs} attachment bodies"
        f" freed; {before} -> {after} bytes"
    )
    return 0


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
