"""couchgate-sync: first sync of a folder of notes each way, and the time a save takes to appear.

Usage (from the repository root):

    python -m bench.bench_folder_sync [--notes 10000] [--size 2048] [--edits 200]
                                      [--upstream embedded|couchdb|pouchdb-server] [--json]
                                      [--no-pouch]

Starts a couchgate (on its embedded store by default) in this process and two folder devices
as real ``couchgate-sync`` processes on temporary folders. Measures: device A's first ``sync``
of N notes of ``--size`` bytes (files/s up), device B's first ``sync`` onto an empty folder
(files/s down), each including the process's start-up; then with both devices in ``run``, the
save-to-appear time of ``--edits`` edits saved on A until B's file holds them (p50/p99); then
the CPU the idle ``run`` process of B uses over 5 s. As the floor, PouchDB (tests/js under
Node) pushes and pulls the same number of documents through the same couchgate.
Targets on the 2-core machine: 10,000 notes each way in 60 s or less; p50 <= 1 s, p99 <= 2 s;
an idle client uses no CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FLOOR_APP = "pouchfloor"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=2048, help="bytes per note")
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument(
        "--per-folder",
        type=int,
        default=500,
        help="notes per directory (a vault that keeps every note in one folder: --per-folder "
        "equal to --notes)",
    )
    parser.add_argument(
        "--upstream", choices=["embedded", "couchdb", "pouchdb-server"], default="embedded"
    )
    parser.add_argument("--no-pouch", action="store_true", help="skip the PouchDB floor")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def note_text(n: int, size: int) -> str:
    head = f"# Note {n}\n\n"
    filler = ("lorem ipsum dolor sit amet " * (size // 27 + 1))[: max(0, size - len(head) - 1)]
    return head + filler + "\n"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from tests.harness import start_gateway, stop_gateway
    from tests.sync.devices import FolderDevice

    with contextlib.ExitStack() as stack:
        upstream = None
        # Notes must be sealed; the PouchDB floor writes plaintext, to an app of its own.
        settings: dict[str, object] = {"plaintext_apps": FLOOR_APP}
        if args.upstream == "embedded":
            settings["data_dir"] = str(work / "embedded")
        else:
            from bench.replication_common import bench_upstream

            ns = argparse.Namespace(upstream=args.upstream, mode="jwt")
            upstream, extra = stack.enter_context(bench_upstream(ns))
            settings.update(extra)
        gateway = await start_gateway(upstream, **settings)
        try:
            result: dict[str, Any] = await _measure(args, work, gateway, FolderDevice)
            return result
        finally:
            await stop_gateway(gateway)


async def _measure(args: argparse.Namespace, work: Path, gateway: Any, device_cls: Any) -> Any:
    a = device_cls(work / "home-a", work / "A", "bench-a", gateway.url)
    b = device_cls(work / "home-b", work / "B", "bench-b", gateway.url)
    _, code = await gateway.enrollment_code()
    await a.join("--code", code)
    await b.join("--pair", await a.pairing_link())
    for n in range(args.notes):
        a.write(f"Notes/{n // args.per_folder}/note {n}.md", note_text(n, args.size))
    started = time.perf_counter()
    await a.sync()
    up_s = time.perf_counter() - started
    started = time.perf_counter()
    await b.sync()
    down_s = time.perf_counter() - started
    assert len(b.files()) == args.notes, "the second device did not get every note"

    await a.run_live()
    await b.run_live()
    await asyncio.sleep(2)  # both watching and following
    latencies: list[float] = []
    target = b.folder / "edited.md"
    for i in range(args.edits):
        text = f"edit {i}\n" + note_text(i, args.size)
        started = time.perf_counter()
        a.write("edited.md", text)
        expected = text.encode()
        while not (target.exists() and target.read_bytes() == expected):
            await asyncio.sleep(0.005)
            if time.perf_counter() - started > 60:
                raise RuntimeError("an edit did not arrive within 60 s")
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.05)
    await asyncio.sleep(3)
    assert b.live is not None
    before = cpu_seconds(b.live.pid)
    await asyncio.sleep(5)
    idle_cpu = cpu_seconds(b.live.pid) - before
    await a.stop_live()
    await b.stop_live()

    pouch: dict[str, float] | None = None
    if not args.no_pouch:
        pouch = await _pouch_floor(args, gateway)
    latencies.sort()
    return {
        "notes": args.notes,
        "per_folder": args.per_folder,
        "size": args.size,
        "upstream": args.upstream,
        "first_sync_up_s": up_s,
        "first_sync_down_s": down_s,
        "files_per_s": {"up": args.notes / up_s, "down": args.notes / down_s},
        "pouch_docs_per_s": pouch,
        "save_to_appear_s": {
            "p50": statistics.median(latencies),
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "max": latencies[-1],
        },
        "idle_cpu_s_over_5s": idle_cpu,
    }


async def _pouch_floor(args: argparse.Namespace, gateway: Any) -> dict[str, float]:
    from tests.pouch import device_remote, run_pouch

    device = await gateway.new_device()
    out = await run_pouch(
        "bench",
        timeout=900,
        remote=device_remote(device, FLOOR_APP),
        count=args.notes,
        doc_size=args.size,
        batch_size=100,
    )
    result = out["result"]
    for way in ("push", "pull"):
        if result[way]["docs_written"] != args.notes:
            raise RuntimeError(f"the PouchDB floor's {way} wrote {result[way]['docs_written']}")
    return {way: args.notes / (result[way]["elapsed_ms"] / 1000) for way in ("push", "pull")}


def report(r: dict[str, Any]) -> str:
    rates = r["files_per_s"]
    lines = [
        f"couchgate-sync, {r['notes']} notes of {r['size']} B, {r['per_folder']} per folder, "
        f"upstream {r['upstream']}",
        f"first sync up    {r['first_sync_up_s']:7.1f} s  {rates['up']:7.0f} files/s",
        f"first sync down  {r['first_sync_down_s']:7.1f} s  {rates['down']:7.0f} files/s",
    ]
    if r["pouch_docs_per_s"]:
        p = r["pouch_docs_per_s"]
        lines.append(f"PouchDB floor    push {p['push']:7.0f} docs/s, pull {p['pull']:7.0f} docs/s")
    s = r["save_to_appear_s"]
    lines.append(
        f"save to appear   p50 {s['p50']:.3f} s  p99 {s['p99']:.3f} s  max {s['max']:.3f} s"
    )
    lines.append(f"idle CPU         {r['idle_cpu_s_over_5s']:.3f} s over 5 s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-folder-sync-") as tmp:
        result = asyncio.run(measure(args, Path(tmp)))
    print(json.dumps(result) if args.json else report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
