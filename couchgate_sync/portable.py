"""``couchgate-sync export FILE`` and ``import FILE``: the account's whole data, still sealed,
to a file and back into another couchgate (docs/export.md).

Both stream: the export is written as it arrives (a progress line on a terminal) into a temporary
file that becomes FILE only once the archive's end line came, so a cut-off download never passes
for a whole one; the import sends the file a chunk at a time. Importing again is harmless: the
server skips revisions it has.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp

from .account_api import headers, open_folder, refused
from .remote import RemoteError, Unreachable

_CHUNK = 1024 * 1024

END = b'{"type":"end"'


def add_parsers(sub: Any) -> None:
    e = sub.add_parser("export", help="download all your data, still encrypted, to FILE")
    e.add_argument("file", type=Path)
    e.add_argument("--dir", type=Path, default=Path("."))
    i = sub.add_parser("import", help="load an export into the server this folder joined")
    i.add_argument("file", type=Path)
    i.add_argument("--dir", type=Path, default=Path("."))


def _progress(written: int, done: bool = False) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\rexport: {written / 1048576:.1f} MiB" + ("\n" if done else ""))
        sys.stderr.flush()


async def export(args: argparse.Namespace) -> int:
    cfg, creds = await asyncio.to_thread(open_folder, args.dir)
    target: Path = args.file.expanduser()
    partial = target.with_name(target.name + ".partial")
    out = await asyncio.to_thread(partial.open, "wb")
    written = 0
    tail = b""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                cfg.server + "/account/api/export",
                headers=headers(creds),
                timeout=aiohttp.ClientTimeout(total=None, sock_read=300),
            ) as resp,
        ):
            if resp.status != 200:
                raise refused(resp.status, await resp.read())
            async for chunk in resp.content.iter_chunked(_CHUNK):
                await asyncio.to_thread(out.write, chunk)
                written += len(chunk)
                tail = (tail + chunk)[-4096:]
                _progress(written)
    except aiohttp.ClientError as exc:
        raise Unreachable(type(exc).__name__) from None
    finally:
        out.close()
    _progress(written, done=True)
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    if not last.startswith(END):
        raise RemoteError(f"the export was cut off; the part is in {partial}: export again")
    await asyncio.to_thread(partial.replace, target)
    print(f"exported {written} bytes to {target} (sealed: readable only with your key)")
    return 0


async def import_(args: argparse.Namespace) -> int:
    cfg, creds = await asyncio.to_thread(open_folder, args.dir)
    path: Path = args.file.expanduser()
    if not await asyncio.to_thread(path.is_file):
        raise FileNotFoundError(f"no such file: {path}")
    source = await asyncio.to_thread(path.open, "rb")
    try:
        # aiohttp reads a file body in its executor, a piece at a time: nothing holds the archive.
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                cfg.server + "/account/api/import",
                data=source,
                headers={**headers(creds), "Content-Type": "application/x-ndjson"},
                timeout=aiohttp.ClientTimeout(total=None, sock_read=600),
            ) as resp,
        ):
            raw = await resp.read()
            if resp.status != 200:
                raise refused(resp.status, raw)
            report = json.loads(raw)
    except aiohttp.ClientError as exc:
        raise Unreachable(type(exc).__name__) from None
    finally:
        source.close()
    loaded = sum(report.get("loaded", {}).values())
    present = sum(report.get("already_present", {}).values())
    print(f"imported {loaded} revision(s) ({present} were on the server already)")
    print("Now run: couchgate-sync sync " + cfg.folder)
    return 0


COMMANDS = {"export": export, "import": import_}
