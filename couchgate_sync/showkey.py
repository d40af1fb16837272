"""``couchgate-sync key [DIR] [--qr]``: the app key's export string again, on a device that has it.

The first device prints the export string once, at ``join``; a person who did not keep it, and
who moves to another server (``--key`` of ``join``, docs/export.md) or adds a device without a
pairing link, needs it again. Shown only on request, on the person's own screen: whoever holds
it reads every note.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from encryption_plugin import Keyring

from .account_api import open_folder


def add_parsers(sub: Any) -> None:
    k = sub.add_parser(
        "key", help="show the app key's export string (it reads every note: keep it private)"
    )
    k.add_argument("dir", type=Path, nargs="?", default=Path("."))
    k.add_argument("--qr", action="store_true", help="also draw it as a QR code")


async def show(args: argparse.Namespace) -> int:
    cfg, creds = await asyncio.to_thread(open_folder, args.dir)
    keyring = Keyring.from_export(creds.key, app_id=cfg.app)
    print(f"The key of {cfg.app} on {cfg.server}; whoever holds it reads every note.")
    print(f"Key fingerprint: {keyring.fingerprint()}\n")
    print(creds.key)
    if args.qr:
        print()
        print(keyring.qr("text"))
    return 0


COMMANDS = {"key": show}
