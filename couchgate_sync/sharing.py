"""``couchgate-sync share PATH``, ``shares`` and ``unshare ID`` (docs/share-links.md).

A file is sealed under a fresh per-share key; the server gets the sealed copy only, and the link
``SERVER/s/<id>#<key>`` carries the key in its fragment, which browsers never send. The link's
key is also kept in this folder's state (0600, outside the folder) so that sharing the same file
again, or ``shares --refresh``, re-seals the changed file under the same link.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from encryption_plugin.shares import SharedNote, new_share_key, seal_share

from . import config, credentials
from .account_api import call, open_folder
from .remote import RemoteError

MAX_FILE_BYTES = 128 * 1024
_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> int:
    """``30m``, ``12h``, ``7d`` → seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError("a duration like 30m, 12h or 7d")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("share", help="make a private link to one file (the server cannot read it)")
    s.add_argument("path", type=Path)
    s.add_argument("--dir", type=Path, default=Path("."))
    s.add_argument("--expires", type=duration, default=duration("7d"), help="e.g. 12h, 7d")
    s.add_argument("--burn-after-reading", action="store_true", help="the link works once")
    ls = sub.add_parser("shares", help="your share links (--refresh re-seals changed files)")
    ls.add_argument("--dir", type=Path, default=Path("."))
    ls.add_argument("--refresh", action="store_true")
    un = sub.add_parser("unshare", help="revoke a share link at once")
    un.add_argument("id")
    un.add_argument("--dir", type=Path, default=Path("."))


@dataclass
class Kept:
    """What this device remembers of a link it made: which file, and the link's key."""

    path: str
    key: str
    sealed_size: int = 0
    mtime_ns: int = 0


def _kept_file(cfg: config.FolderConfig) -> Path:
    return cfg.state_dir / "shares.json"


def _load(cfg: config.FolderConfig) -> dict[str, Kept]:
    try:
        raw = json.loads(_kept_file(cfg).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {k: Kept(**v) for k, v in raw.items() if isinstance(v, dict)}


def _save(cfg: config.FolderConfig, kept: dict[str, Kept]) -> None:
    path = _kept_file(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    config.write_replacing(path, json.dumps({k: asdict(v) for k, v in kept.items()}), 0o600)


def _relative(cfg: config.FolderConfig, path: Path) -> str:
    folder = Path(cfg.folder)
    full = path.expanduser()
    full = (full if full.is_absolute() else folder / full).resolve()  # as history, restore
    try:
        return full.relative_to(folder).as_posix()
    except ValueError:
        raise RemoteError(f"{path} is not in the synced folder {folder}") from None


def _read_note(cfg: config.FolderConfig, rel: str) -> tuple[SharedNote, int]:
    full = Path(cfg.folder) / rel
    stat = full.stat()
    if stat.st_size > MAX_FILE_BYTES:
        raise RemoteError(f"{rel} is larger than {MAX_FILE_BYTES // 1024} KiB: too big to share")
    try:
        text = full.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RemoteError(f"{rel} is not a text file: only notes can be shared") from None
    return SharedNote(Path(rel).name, text), stat.st_mtime_ns


def link(cfg: config.FolderConfig, share_id: str, key: str) -> str:
    return f"{cfg.server}/s/{share_id}#{key}"


async def share(args: argparse.Namespace) -> int:
    cfg, creds = await asyncio.to_thread(open_folder, args.dir)
    rel = await asyncio.to_thread(_relative, cfg, args.path)
    note, mtime = await asyncio.to_thread(_read_note, cfg, rel)
    kept = await asyncio.to_thread(_load, cfg)
    async with aiohttp.ClientSession() as session:
        for share_id, known in kept.items():
            if known.path == rel:  # already shared: re-seal the same link
                envelope = seal_share(known.key, note)
                with contextlib.suppress(RemoteError):
                    await call(
                        session, cfg, creds, "PUT", f"/shares/api/{share_id}", {"e2e": envelope}
                    )
                    known.mtime_ns = mtime
                    await asyncio.to_thread(_save, cfg, kept)
                    print(f"Re-sealed the existing link with the current {rel}:")
                    print(link(cfg, share_id, known.key))
                    return 0
        key = new_share_key()
        made = await call(
            session,
            cfg,
            creds,
            "POST",
            "/shares/api",
            {
                "e2e": seal_share(key, note),
                "app": cfg.app,
                "expires_in": args.expires,
                "burn_after_reading": args.burn_after_reading,
            },
        )
    kept[made["id"]] = Kept(rel, key, 0, mtime)
    await asyncio.to_thread(_save, cfg, kept)
    print(f"Anyone with this link can read {rel} until {made['expires']}", end="")
    print(" (once)." if args.burn_after_reading else ".")
    print("The key is the part after #; the server never sees it.\n")
    print(link(cfg, made["id"], key))
    return 0


async def reseal_changed(
    session: aiohttp.ClientSession, cfg: config.FolderConfig, creds: credentials.Credentials
) -> int:
    """Seal every shared file that changed since it was last sealed again under its own link,
    so a link shows the file as it is now; returns how many. ``run`` calls it after each upload
    (``shares --refresh`` by hand)."""
    kept = await asyncio.to_thread(_load, cfg)
    resealed = 0
    for share_id, known in kept.items():
        try:
            note, mtime = await asyncio.to_thread(_read_note, cfg, known.path)
        except (FileNotFoundError, RemoteError):  # gone, or no longer a note: left as shared
            continue
        if mtime != known.mtime_ns:
            envelope = seal_share(known.key, note)
            await call(session, cfg, creds, "PUT", f"/shares/api/{share_id}", {"e2e": envelope})
            known.mtime_ns = mtime
            resealed += 1
    if resealed:
        await asyncio.to_thread(_save, cfg, kept)
    return resealed


async def shares(args: argparse.Namespace) -> int:
    cfg, creds = await asyncio.to_thread(open_folder, args.dir)
    async with aiohttp.ClientSession() as session:
        refreshed = await reseal_changed(session, cfg, creds) if args.refresh else 0
        kept = await asyncio.to_thread(_load, cfg)
        listed = await call(session, cfg, creds, "GET", "/shares/api")
        live = {row["id"] for row in listed}
        for row in listed:
            known = kept.get(row["id"])
            where = known.path if known else "(made on another device)"
            once = ", once" if row["burn_after_reading"] else ""
            print(f"{row['id']}  {where}  expires {row['expires']}{once}  {row['size']} bytes")
    gone = [k for k in kept if k not in live]
    for share_id in gone:  # expired, burnt or revoked elsewhere: forget its key
        del kept[share_id]
    await asyncio.to_thread(_save, cfg, kept)
    if args.refresh:
        print(f"re-sealed {refreshed} changed file(s)")
    if not listed:
        print("no share links")
    return 0


async def unshare(args: argparse.Namespace) -> int:
    cfg, creds = await asyncio.to_thread(open_folder, args.dir)
    async with aiohttp.ClientSession() as session:
        await call(session, cfg, creds, "DELETE", f"/shares/api/{args.id}")
    kept = await asyncio.to_thread(_load, cfg)
    kept.pop(args.id, None)
    await asyncio.to_thread(_save, cfg, kept)
    print(f"revoked {args.id}: the link is dead now")
    return 0


_UNSHARE_OPTIONS = ("-h", "--help", "--dir")


def id_operand(argv: list[str]) -> list[str]:
    """``argv`` with ``unshare``'s ID moved after ``--`` when it begins with "-": share ids
    are base64url, and one made before ids stopped beginning with "-" (gateway/shares) is
    still a live link, which argparse would take for an unknown option."""
    at = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if at is None or argv[at] != "unshare" or "--" in argv:
        return argv
    rest = argv[at + 1 :]
    ids = [
        i
        for i, a in enumerate(rest)
        if a.startswith("-")
        and a not in _UNSHARE_OPTIONS
        and not a.startswith("--dir=")
        and (i == 0 or rest[i - 1] != "--dir")
    ]
    if len(ids) != 1:
        return argv
    (i,) = ids
    return [*argv[: at + 1], *rest[:i], *rest[i + 1 :], "--", rest[i]]


COMMANDS = {"share": share, "shares": shares, "unshare": unshare}
