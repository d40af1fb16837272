"""couchgate-sync: restoring a deleted vault in bulk (``restore DIR/``, ``rewind``).

Usage (from the repository root):

    python -m bench.bench_bulk_restore [--notes 2000] [--size 2048] [--json]

Starts a couchgate on its embedded store in this process and one folder device as real
``couchgate-sync`` processes on a temporary folder. The device syncs N notes, deletes them all
(held by the mass-deletion guard, then confirmed), and brings them back with one ``restore
Notes/``; then deletes them again the same way and brings them back with one ``rewind --to``
a time before the deletion. Each figure is the whole command: the process's start-up, the
offline cycle that records the folder first, the writing, and the sync that uploads the
restored files. Target on the 2-core machine: 2,000 files in 10 s or less (issue 21).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=2000)
    parser.add_argument("--size", type=int, default=2048, help="bytes per note")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from tests.harness import start_gateway, stop_gateway
    from tests.sync.devices import FolderDevice

    gateway = await start_gateway(None, data_dir=str(work / "embedded"))
    try:
        a = FolderDevice(work / "home-a", work / "A", "bench-a", gateway.url)
        _, code = await gateway.enrollment_code()
        await a.join("--code", code)
        body = "x" * args.size
        for n in range(args.notes):
            a.write(f"Notes/{n // 500}/note {n}.md", f"# {n}\n{body}\n")
        await a.sync()

        async def delete_all() -> None:
            shutil.rmtree(a.folder / "Notes")
            await a.sync()  # held by the guard
            await a.cli("deletions", "confirm", str(a.folder))
            assert a.files() == {}

        await delete_all()
        started = time.perf_counter()
        await a.cli("restore", "Notes/", "--dir", str(a.folder))
        restore_s = time.perf_counter() - started
        assert len(a.files()) == args.notes, "restore Notes/ did not bring every file back"

        before = datetime.now().isoformat(timespec="seconds")
        await asyncio.sleep(1.1)  # the deletion comes after that second
        await delete_all()
        started = time.perf_counter()
        await a.cli("rewind", "--to", before, "--dir", str(a.folder))
        rewind_s = time.perf_counter() - started
        assert len(a.files()) == args.notes, "rewind did not bring every file back"
    finally:
        await stop_gateway(gateway)
    return {
        "notes": args.notes,
        "size": args.size,
        "restore_dir_s": round(restore_s, 2),
        "rewind_s": round(rewind_s, 2),
    }


def report(r: dict[str, Any]) -> str:
    return (
        f"couchgate-sync bulk restore, {r['notes']} notes of {r['size']} B, embedded store\n"
        f"restore Notes/   {r['restore_dir_s']:6.1f} s  (whole command, with its sync)\n"
        f"rewind --to      {r['rewind_s']:6.1f} s  (whole command, with its sync)"
    )


def main(argv: list[str] | None = None) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-bulk-restore-") as tmp:
        result = asyncio.run(measure(args, Path(tmp)))
    print(json.dumps(result) if args.json else report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
