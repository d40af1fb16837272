"""The demo web app's first sync of an account a folder client filled: everything, as the demo
used to replicate, against attachments on demand (docs/notes-format.md, "A web device").

Usage (from the repository root):

    python -m bench.bench_demo_sync [--notes 200] [--large 2] [--large-mib 6] [--binaries 4]
                                    [--binary-kib 512] [--json]

Starts a couchgate on its embedded store in this process and one folder device (a real
``couchgate-sync``) that writes ``--notes`` notes of 2 KB, ``--large`` files of ``--large-mib``
MiB (stored in chunks) and ``--binaries`` binary files, then edits every one of them twice, each
edit in a sync of its own, so that the account holds two kept versions of each and the chunks
both versions of every large file list. Then Debian's Chromium (Playwright) opens the demo
through a pairing link twice, each time in a new browser profile: once replicating everything
(``localStorage['couchgate-demo-attachments'] = 'replicate'``) and once as the demo does now,
attachments on demand. Each run is timed from opening the link until the page says "Synced"
with every note listed (and apart, from the page's first request to the database), and the
bytes and requests the page received are counted. Last, a second folder device's first sync of
the same account, for scale.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODES = ("replicate", "on-demand")
SYNC_TIMEOUT_MS = 600_000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=200)
    parser.add_argument("--large", type=int, default=2, help="files stored in chunks")
    parser.add_argument("--large-mib", type=int, default=6)
    parser.add_argument("--binaries", type=int, default=4, help="binary files (one attachment)")
    parser.add_argument("--binary-kib", type=int, default=512)
    parser.add_argument(
        "--only", choices=MODES, help="one mode alone (no ratio): to look at one more closely"
    )
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def account_files(args: argparse.Namespace, edit: int) -> dict[str, bytes]:
    """The folder's files at ``edit`` (0 is the first version): notes change their text, large
    and binary files a stretch of their bytes, so each edit keeps most chunks."""
    import random

    files: dict[str, bytes] = {}
    for n in range(args.notes):
        head = f"# Note {n}, edit {edit}\n\n"
        files[f"Notes/note {n}.md"] = (head + "lorem ipsum dolor sit amet " * 74)[:2048].encode()
    for n in range(args.large):
        data = bytearray(random.Random(n).randbytes(args.large_mib << 20))
        data[len(data) // 2 : len(data) // 2 + 64] = bytes([edit]) * 64
        files[f"Media/large {n}.bin"] = bytes(data)
    for n in range(args.binaries):
        data = bytearray(random.Random(1000 + n).randbytes(args.binary_kib << 10))
        data[:16] = bytes([edit]) * 16
        files[f"Media/photo {n}.jpg"] = bytes(data)
    return files


async def fill_account(args: argparse.Namespace, work: Path, gateway: Any) -> Any:
    from tests.sync.devices import FolderDevice

    device = FolderDevice(work / "home", work / "Vault", "bench-folder", gateway.url)
    _, code = await gateway.enrollment_code()
    await device.join("--code", code)
    for edit in range(3):
        for rel, data in account_files(args, edit).items():
            device.write(rel, data)
        await device.sync()
    return device


async def stored_bytes(gateway: Any, db: str) -> dict[str, int]:
    """What the server holds for the account: documents, and attachment bytes."""
    status, stored = await gateway.peek("GET", f"/{db}/_all_docs?include_docs=true")
    assert status == 200, stored
    docs = [row["doc"] for row in stored["rows"] if not row["id"].startswith("_")]
    attachments = sum(
        att["length"] for doc in docs for att in (doc.get("_attachments") or {}).values()
    )
    return {"documents": len(docs), "attachment_bytes": attachments}


async def first_sync(browser: Any, link: str, mode: str, notes: int) -> dict[str, Any]:
    from playwright.async_api import expect

    context = await browser.new_context()
    await context.add_init_script(
        f"localStorage.setItem('couchgate-demo-attachments', {json.dumps(mode)})"
    )
    page = await context.new_page()
    received = {"requests": 0, "bytes": 0, "attachment_requests": 0}
    first_request: list[float] = []

    def started_db(request: Any) -> None:
        if "/db/notes" in request.url and not first_request:
            first_request.append(time.perf_counter())

    async def count(request: Any) -> None:
        if "/db/notes" not in request.url:
            return
        sizes = await request.sizes()
        received["requests"] += 1
        received["bytes"] += sizes["responseBodySize"] + sizes["responseHeadersSize"]
        path = request.url.split("?")[0].split("/db/notes/", 1)[-1]
        if path.count("/") == 1 and not path.startswith("_"):
            received["attachment_requests"] += 1

    pending: set[asyncio.Task[None]] = set()

    def on_finished(request: Any) -> None:
        task = asyncio.ensure_future(count(request))
        pending.add(task)
        task.add_done_callback(pending.discard)

    page.on("request", started_db)
    page.on("requestfinished", on_finished)
    started = time.perf_counter()
    await page.goto(link)
    await expect(page.locator("#note-list > li")).to_have_count(notes, timeout=SYNC_TIMEOUT_MS)
    await expect(page.locator("#sync-state")).to_have_text("Synced", timeout=SYNC_TIMEOUT_MS)
    synced = time.perf_counter()
    await asyncio.sleep(0.5)  # the last responses' sizes
    await asyncio.gather(*pending)
    await context.close()
    # From the page's first request to the app's database: without loading and pairing.
    replication = synced - first_request[0]
    return {"seconds": synced - started, "replication_seconds": replication, **received}


async def folder_first_sync(work: Path, gateway: Any, device: Any) -> float:
    """A second folder device's first ``sync`` of the same account (every file, every chunk,
    every version), process start-up included: what the issue compared the demo with."""
    from tests.sync.devices import FolderDevice

    second = FolderDevice(work / "home-2", work / "Vault 2", "bench-folder-2", gateway.url)
    await second.join("--pair", await device.pairing_link())
    started = time.perf_counter()
    await second.sync()
    return time.perf_counter() - started


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.harness import start_gateway, stop_gateway
    from tests.sync.devices import joined_user

    gateway = await start_gateway(None, data_dir=str(work / "embedded"), plaintext_apps="")
    try:
        device = await fill_account(args, work, gateway)
        stored = await stored_bytes(gateway, f"u{joined_user(device)}-notes")
        runs: dict[str, Any] = {}
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for mode in [args.only] if args.only else MODES:
                    link = await device.pairing_link()
                    runs[mode] = await first_sync(browser, link, mode, args.notes)
            finally:
                await browser.close()
        folder = await folder_first_sync(work, gateway, device)
    finally:
        await stop_gateway(gateway)
    result: dict[str, Any] = {
        "account": {
            "notes": args.notes,
            "large_files": args.large,
            "large_mib": args.large_mib,
            "binaries": args.binaries,
            "binary_kib": args.binary_kib,
            "versions_per_file": 2,
            **stored,
        },
        "first_sync": runs,
        "folder_client_first_sync_s": folder,
    }
    if len(runs) == len(MODES):
        before, after = runs["replicate"], runs["on-demand"]
        result["ratio"] = {
            "seconds": before["seconds"] / after["seconds"],
            "bytes": before["bytes"] / max(1, after["bytes"]),
        }
    return result


def report(r: dict[str, Any]) -> str:
    a = r["account"]
    lines = [
        f"account: {a['documents']} documents, {a['attachment_bytes'] / 2**20:.1f} MiB of "
        f"attachments ({a['notes']} notes, {a['large_files']} x {a['large_mib']} MiB in chunks, "
        f"{a['binaries']} x {a['binary_kib']} KiB binaries; 2 kept versions of each)",
    ]
    for mode, run in r["first_sync"].items():
        lines.append(
            f"  {mode:>9}: first sync {run['seconds']:6.1f} s (replication "
            f"{run['replication_seconds']:.1f} s), {run['bytes'] / 2**20:7.2f} MiB in "
            f"{run['requests']} requests ({run['attachment_requests']} attachment GETs)"
        )
    lines.append(f"  a second folder device's first sync: {r['folder_client_first_sync_s']:.1f} s")
    if "ratio" in r:
        lines.append(
            f"  on demand is {r['ratio']['seconds']:.1f}x faster and receives "
            f"{r['ratio']['bytes']:.0f}x fewer bytes"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-demo-sync-") as tmp:
        result = asyncio.run(measure(args, Path(tmp)))
    print(json.dumps(result) if args.json else report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
