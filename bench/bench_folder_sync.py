"""couchgate-sync: first sync of a folder of notes each way, and the time a save takes to appear.

Usage (from the repository root):

    python -m bench.bench_folder_sync [--notes 10000] [--size 2048] [--edits 200]
                                      [--upstream embedded|couchdb|pouchdb-server] [--json]
                                      [--no-pouch] [--vs-syncthing]

Starts a couchgate (on its embedded store by default) in this process and two folder devices
as real ``couchgate-sync`` processes on temporary folders. Measures: device A's first ``sync``
of N notes of ``--size`` bytes (files/s up), device B's first ``sync`` onto an empty folder
(files/s down), each including the process's start-up; then with both devices in ``run``, the
save-to-appear time of ``--edits`` edits saved on A until B's file holds them (p50/p99); then
the CPU the idle ``run`` process of B uses over 5 s. As the floor, PouchDB (tests/js under
Node) pushes and pulls the same number of documents through the same couchgate.

With ``--vs-syncthing``, Syncthing (the ``syncthing`` on PATH, Debian's package; the bench installs
nothing) does the same in the same run, after couchgate-sync has finished: two instances on
loopback (bench/syncthing_pair.py), the same notes written to the first one's folder, the time
from sharing the folder to the second instance holding every file (polled on the REST API's
``/rest/db/status``; it includes the first instance's scan, reported apart), then the same
save-to-appear loop with its watcher at 1 s. Printed side by side with couchgate-sync's figures
and the ratio of each.

Targets on the 2-core machine: 10,000 notes each way in 60 s or less; p50 <= 1 s, p99 <= 2 s;
an idle client uses no CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
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
    parser.add_argument(
        "--vs-syncthing",
        action="store_true",
        help="also measure Syncthing on the same notes in the same run (needs syncthing on PATH)",
    )
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def write_notes(write: Callable[[str, str], None], args: argparse.Namespace) -> None:
    for n in range(args.notes):
        write(f"Notes/{n // args.per_folder}/note {n}.md", note_text(n, args.size))


def note_text(n: int, size: int) -> str:
    head = f"# Note {n}\n\n"
    filler = ("lorem ipsum dolor sit amet " * (size // 27 + 1))[: max(0, size - len(head) - 1)]
    return head + filler + "\n"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wakeups(pid: int) -> int:
    """Times the threads of ``pid`` went to sleep (voluntary context switches): each is a
    wake-up that came before it."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            for line in status.read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


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
    write_notes(a.write, args)
    started = time.perf_counter()
    await a.sync()
    up_s = time.perf_counter() - started
    started = time.perf_counter()
    await b.sync()
    down_s = time.perf_counter() - started
    # The largest resident set of any client process so far (the joins are far smaller).
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert len(b.files()) == args.notes, "the second device did not get every note"

    try:
        await a.run_live()
        await b.run_live()
        await asyncio.sleep(2)  # both watching and following
        latencies = await save_to_appear(args, a.write, b.folder / "edited.md")
        await asyncio.sleep(3)
        assert b.live is not None
        before, woken = cpu_seconds(b.live.pid), wakeups(b.live.pid)
        await asyncio.sleep(5)
        idle_cpu = cpu_seconds(b.live.pid) - before
        idle_wakeups = wakeups(b.live.pid) - woken
    finally:
        await a.stop_live()
        await b.stop_live()

    pouch: dict[str, float] | None = None
    if not args.no_pouch:
        pouch = await _pouch_floor(args, gateway)
    syncthing = await _vs_syncthing(args, work / "syncthing") if args.vs_syncthing else None
    result = {
        "notes": args.notes,
        "per_folder": args.per_folder,
        "size": args.size,
        "upstream": args.upstream,
        "first_sync_up_s": up_s,
        "first_sync_down_s": down_s,
        "files_per_s": {"up": args.notes / up_s, "down": args.notes / down_s},
        "pouch_docs_per_s": pouch,
        "save_to_appear_s": percentiles(latencies),
        "idle_cpu_s_over_5s": idle_cpu,
        "idle_wakeups_over_5s": idle_wakeups,
        "client_peak_rss_mb": peak_mb,
    }
    if syncthing is not None:
        result["syncthing"] = syncthing | {"ratio": ratios(result, syncthing)}
    return result


async def save_to_appear(
    args: argparse.Namespace, write: Callable[[str, str], None], target: Path
) -> list[float]:
    """Save ``--edits`` edits of one note through ``write`` on the first device, each only once
    the previous one has appeared as ``target`` on the second; the seconds each took."""
    latencies: list[float] = []
    for i in range(args.edits):
        text = f"edit {i}\n" + note_text(i, args.size)
        started = time.perf_counter()
        write("edited.md", text)
        expected = text.encode()
        while not holds(target, expected):
            await asyncio.sleep(0.005)
            if time.perf_counter() - started > 60:
                raise RuntimeError("an edit did not arrive within 60 s")
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.05)
    return latencies


def holds(path: Path, expected: bytes) -> bool:
    try:  # a client may be replacing it this very moment
        return path.read_bytes() == expected
    except FileNotFoundError:
        return False


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max": ordered[-1],
    }


async def _vs_syncthing(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Syncthing's first sync of the same notes to a second device, and its save-to-appear.

    The clock starts when the folder is shared on the (empty) second device and then on the
    first, whose folder already holds the notes, both instances running and connected: it covers
    the first one's scan (``scan_s``, when its REST API first counts every file) and the transfer,
    up to the second one's ``/rest/db/status`` counting every file, which the folder on disk then
    has to show."""
    from bench.syncthing_pair import syncthing_pair, wait_for

    async with syncthing_pair(work) as pair:
        a, b = pair.a, pair.b

        def write(rel: str, text: str) -> None:
            path = a.folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

        write_notes(write, args)
        scan_s: float | None = None
        started = time.perf_counter()

        async def every_file_on_b() -> bool:
            nonlocal scan_s
            if scan_s is None:
                ours = await pair.status(a)
                if ours["localFiles"] >= args.notes and ours["state"] == "idle":
                    scan_s = time.perf_counter() - started
            theirs = await pair.status(b)
            return bool(theirs["localFiles"] >= args.notes and theirs["state"] == "idle")

        await pair.share(b)
        await pair.share(a)
        await wait_for(
            every_file_on_b, "the second device's first sync", max(120.0, args.notes / 20)
        )
        first_sync_s = time.perf_counter() - started  # from before the two shares
        on_disk = sum(1 for p in b.folder.rglob("*.md") if p.is_file())
        if on_disk != args.notes:
            raise RuntimeError(f"Syncthing's second device holds {on_disk} of {args.notes} notes")
        await asyncio.sleep(2)  # both watching
        latencies = await save_to_appear(args, write, b.folder / "edited.md")
        return {
            "version": pair.version,
            "watcher_delay_s": 1,
            "scan_s": scan_s,
            "first_sync_s": first_sync_s,
            "files_per_s": args.notes / first_sync_s,
            "save_to_appear_s": percentiles(latencies),
        }


def ratios(ours: dict[str, Any], syncthing: dict[str, Any]) -> dict[str, float]:
    """couchgate-sync's figure over Syncthing's: files/s (higher is better for couchgate-sync)
    each way and end to end (up then down, a vault reaching a second device), and the
    save-to-appear times (lower is better)."""
    end_to_end = ours["notes"] / (ours["first_sync_up_s"] + ours["first_sync_down_s"])
    theirs_rate = syncthing["files_per_s"]
    theirs_lat = syncthing["save_to_appear_s"]
    return {
        "files_per_s_up": ours["files_per_s"]["up"] / theirs_rate,
        "files_per_s_down": ours["files_per_s"]["down"] / theirs_rate,
        "files_per_s_end_to_end": end_to_end / theirs_rate,
        "save_to_appear_p50": ours["save_to_appear_s"]["p50"] / theirs_lat["p50"],
        "save_to_appear_p99": ours["save_to_appear_s"]["p99"] / theirs_lat["p99"],
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
        lines.append(
            f"PouchDB floor    push {p['push']:7.0f} docs/s, pull {p['pull']:7.0f} docs/s "
            f"(couchgate-sync at {rates['up'] / p['push']:.2f} up, {rates['down'] / p['pull']:.2f} "
            "down)"
        )
    s = r["save_to_appear_s"]
    lines.append(
        f"save to appear   p50 {s['p50']:.3f} s  p99 {s['p99']:.3f} s  max {s['max']:.3f} s"
    )
    lines.append(
        f"idle             {r['idle_cpu_s_over_5s']:.3f} s of CPU and "
        f"{r['idle_wakeups_over_5s']} wake-ups over 5 s"
    )
    lines.append(f"client peak RSS  {r['client_peak_rss_mb']:.0f} MB")
    if "syncthing" in r:
        lines += side_by_side(r)
    return "\n".join(lines)


def side_by_side(r: dict[str, Any]) -> list[str]:
    st, q, rates = r["syncthing"], r["syncthing"]["ratio"], r["files_per_s"]
    ours_s, theirs_s = r["save_to_appear_s"], st["save_to_appear_s"]
    scan = "" if st["scan_s"] is None else f" (its scan {st['scan_s']:.1f} s)"
    both_ways = r["first_sync_up_s"] + r["first_sync_down_s"]
    return [
        "",
        f"Syncthing {st['version']}, same notes, same run, watcher delay {st['watcher_delay_s']} s;"
        " ratio = couchgate-sync / Syncthing",
        "                          couchgate-sync   Syncthing   ratio",
        f"files/s up                {rates['up']:14.0f} {st['files_per_s']:11.0f} "
        f"{q['files_per_s_up']:7.2f}",
        f"files/s down              {rates['down']:14.0f} {st['files_per_s']:11.0f} "
        f"{q['files_per_s_down']:7.2f}",
        f"files/s to second device  {r['notes'] / both_ways:14.0f} {st['files_per_s']:11.0f} "
        f"{q['files_per_s_end_to_end']:7.2f}",
        f"  seconds, up then down   {both_ways:14.1f} {st['first_sync_s']:11.1f}{scan}",
        f"save to appear p50 (s)    {ours_s['p50']:14.3f} {theirs_s['p50']:11.3f} "
        f"{q['save_to_appear_p50']:7.2f}",
        f"save to appear p99 (s)    {ours_s['p99']:14.3f} {theirs_s['p99']:11.3f} "
        f"{q['save_to_appear_p99']:7.2f}",
    ]


def main(argv: list[str] | None = None) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    args = parse_args(argv)
    if args.vs_syncthing:
        from bench.syncthing_pair import SyncthingMissing, syncthing_executable

        try:
            syncthing_executable()
        except SyncthingMissing as exc:
            print(f"bench_folder_sync: {exc}", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="bench-folder-sync-") as tmp:
        result = asyncio.run(measure(args, Path(tmp)))
    print(json.dumps(result) if args.json else report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
