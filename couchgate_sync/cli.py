"""``couchgate-sync``: join, run, sync, status, pair, history, restore, rewind, deletions.

Exit codes: 0 done, 1 a problem described on stderr, 2 a usage error, 3 this device was revoked
(nothing in the folder was changed), 130 interrupted, 141 the reader of the output stopped early
(``| head``), silently. Logs never carry note contents or file names, at any level; output does
only where a person asked for them (``history``, ``restore``, ``status`` of their own folder).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

from encryption_plugin import CryptoError, Keyring

from . import (
    config,
    credentials,
    deletions,
    failures,
    folder,
    history,
    malloc,
    marker,
    placing,
    portable,
    rewind,
    runstate,
    sharing,
    showkey,
)
from .counts import Counts
from .cycle import FolderBusy, FolderSync
from .join import Auth, pairing_link, parse_pairing
from .live import Runner, TaskEnded, describe
from .remote import Remote, RemoteError, Revoked
from .state import Meta

log = logging.getLogger("couchgate_sync")
EXIT_REVOKED = 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="couchgate-sync", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    sub = p.add_subparsers(dest="command", required=True)

    j = sub.add_parser("join", help="sign this device in and pick the folder to sync")
    j.add_argument("server", help="the couchgate server, e.g. https://sync.example.org")
    j.add_argument("dir", type=Path)
    j.add_argument("--app", default="notes")
    j.add_argument("--device", default=None, help="this device's name (default: host name)")
    how = j.add_mutually_exclusive_group()
    how.add_argument("--code", help="an enrollment code (`couchgate users add`)")
    how.add_argument("--email", help="sign in with a code sent to this address")
    how.add_argument("--pair", help="a pairing link (or its #fragment) from another device")
    j.add_argument("--key", help="the app key's export string (from your first device)")
    j.add_argument(
        "--keep-days",
        type=_days,
        default=30,
        help="days to keep replaced and deleted versions on the server (0: keep none)",
    )

    for name, text in (
        ("run", "sync now and keep syncing (watches the folder and the server)"),
        ("sync", "sync once and exit"),
        ("status", "what this folder's sync is doing"),
        ("pair", "make a pairing link for another device (carries the key: keep it private)"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("dir", type=Path, nargs="?", default=Path("."))

    h = sub.add_parser("history", help="the kept versions of a file (or --deleted files)")
    h.add_argument("path", nargs="?")
    h.add_argument("--dir", type=Path, default=Path("."))
    h.add_argument("--deleted", action="store_true")
    r = sub.add_parser(
        "restore",
        help="bring back a version of a file (also a deleted one), or with DIR/ every deleted "
        "file of a folder",
    )
    r.add_argument("path", help="a file, or a folder ending in / (DIR/, or ./ for all)")
    r.add_argument("version", nargs="?", type=int)
    r.add_argument("--dir", type=Path, default=Path("."))
    w = sub.add_parser(
        "rewind", help="every file (of DIR) as it was at a time, deleted ones included"
    )
    w.add_argument(
        "--to", required=True, type=_time, metavar="TIME", help="2026-12-07T13:00 (local), or 2h"
    )
    w.add_argument("path", nargs="?", default="", help="a folder of the vault (default: all)")
    w.add_argument("--dir", type=Path, default=Path("."))
    d = sub.add_parser("deletions", help="confirm or undo the deletions the guard holds")
    d.add_argument("action", choices=["confirm", "undo"])
    d.add_argument("dir", type=Path, nargs="?", default=Path("."))
    sharing.add_parsers(sub)  # share, shares, unshare
    portable.add_parsers(sub)  # export, import
    showkey.add_parsers(sub)  # key
    return p


def _days(text: str) -> int:
    days = int(text)
    if days < 0:
        raise argparse.ArgumentTypeError("days cannot be negative")
    return days


def _time(text: str) -> int:
    try:
        return rewind.parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(sharing.id_operand(argv))
    malloc.return_large_buffers()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # watchfiles logs every batch of changes (and, at debug level, the paths): never names.
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    commands: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
        "join": _join,
        "run": _run,
        "sync": _sync,
        "status": _status,
        "pair": _pair,
        "history": _history,
        "restore": _restore,
        "deletions": _deletions,
        "rewind": _rewind,
        **sharing.COMMANDS,
        **portable.COMMANDS,
        **showkey.COMMANDS,
    }
    try:
        code = asyncio.run(commands[args.command](args))
        sys.stdout.flush()  # a reader gone early is met here, not at exit
        return code
    except BrokenPipeError:
        return _reader_gone()
    except Revoked as exc:
        print(f"couchgate-sync: {exc}", file=sys.stderr)
        return EXIT_REVOKED
    except (
        RemoteError,
        config.NotJoined,
        credentials.Gone,
        placing.Overlaps,
        CryptoError,
        FileNotFoundError,
        FolderBusy,
        marker.FolderMarkerMissing,
        TaskEnded,
        runstate.RunFailed,
        runstate.RunGone,
    ) as exc:
        print(f"couchgate-sync: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _reader_gone() -> int:
    """Whoever read stdout stopped (``history --deleted | head``): end quietly, as git does
    (128 + SIGPIPE); what is left unwritten goes nowhere rather than into an error at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 128 + signal.SIGPIPE


class _ProgressLine:
    """The first sync's progress, redrawn in place on the terminal (counts only, no names)."""

    def __init__(self) -> None:
        self.seen = {"up": 0, "down": 0, "written": 0}

    def __call__(self, what: str, n: int) -> None:
        self.seen[what] += n
        s = self.seen
        sys.stderr.write(
            f"\rfirst sync: {s['up']} uploaded, {s['down']} downloaded, "
            f"{s['written']} files written "
        )
        sys.stderr.flush()


async def _join(args: argparse.Namespace) -> int:
    folder = args.dir.expanduser().resolve()
    await asyncio.to_thread(placing.refuse_overlap, folder)
    made = await asyncio.to_thread(placing.make, folder)
    try:
        return await _join_folder(args, folder)
    except BaseException:
        await asyncio.to_thread(placing.take_back, made)
        raise


async def _join_folder(args: argparse.Namespace, folder: Path) -> int:
    name = args.device or socket.gethostname()
    key = args.key
    async with aiohttp.ClientSession() as session:
        auth = Auth(session, args.server)
        if args.pair:
            pairing = parse_pairing(args.pair)
            if pairing is None:
                raise RemoteError("that is not a pairing link (it needs #pair=…&key=…)")
            Keyring.from_export(pairing.key, app_id=args.app)  # refuse a foreign key first
            signed = await auth.redeem_link(pairing.code, name)
            key = pairing.key
        elif args.code:
            signed = await auth.enroll(args.code, name)
        else:
            email = args.email or (await asyncio.to_thread(input, "Email address: ")).strip()
            challenge = await auth.request_email_code(email)
            code = await asyncio.to_thread(input, "The code from the email: ")
            signed = await auth.redeem_email_code(challenge, code.strip(), name)
        remote = Remote(session, args.server, args.app, signed.token)
        await remote.ensure_db()
        first = key is None
        if first:
            info = await remote.info()
            if int(info.get("doc_count", 0) or 0) > 0:
                raise RemoteError(
                    f"this account already has {args.app} data: pass --key with the key's export "
                    "string, or use --pair with a pairing link from one of your devices"
                )
            key = Keyring.generate(args.app).export()
    keyring = Keyring.from_export(key, app_id=args.app)
    cfg = config.FolderConfig(
        str(folder),
        args.server.rstrip("/"),
        args.app,
        name,
        signed.device,
        signed.user,
        args.keep_days,
    )
    where = await asyncio.to_thread(
        credentials.store, cfg.key, credentials.Credentials(signed.token, key)
    )
    await asyncio.to_thread(config.save, cfg)
    await asyncio.to_thread(marker.write, folder, keyring)
    print(f"Joined: {folder} syncs with {cfg.server} ({cfg.app}) as device {name!r}.")
    print(f"Token and key kept in {where}.")
    print(f"Key fingerprint: {keyring.fingerprint()}")
    if first:
        print("\nThis is your first device, so a new key was made. Keep it safe: without it no")
        print("device can read your notes. Its export string (give it to other devices):\n")
        print(key)
        print()
        print(keyring.qr("text"))
    print("Now run: couchgate-sync run " + str(folder))
    return 0


def _open(folder_arg: Path) -> tuple[config.FolderConfig, credentials.Credentials, Keyring]:
    folder = folder_arg.expanduser().resolve()
    cfg = config.load(folder)
    creds = credentials.load(cfg.key)
    if creds is None:
        raise config.NotJoined(folder)
    return cfg, creds, Keyring.from_export(creds.key, app_id=cfg.app)


async def _with_folder(
    folder_arg: Path,
    use: Callable[[FolderSync, Remote, config.FolderConfig], Coroutine[Any, Any, int]],
    *,
    exclusive: bool = True,
) -> int:
    cfg, creds, keyring = await asyncio.to_thread(_open, folder_arg)
    guard = deletions.Guard(cfg.deletion_guard_share, cfg.deletion_guard_files)
    folder_sync = FolderSync(
        Path(cfg.folder), cfg.state_dir, keyring, cfg.device, cfg.keep_days, guard
    )
    if exclusive:
        await _open_beside_run(folder_sync, cfg)
    else:
        await folder_sync.open(exclusive=False)
    state = folder_sync.context.state
    first = await asyncio.to_thread(state.meta, Meta.LAST_SYNC, "") == ""
    if first and sys.stderr.isatty():
        folder_sync.progress = _ProgressLine()
    try:
        async with aiohttp.ClientSession() as session:
            remote = Remote(session, cfg.server, cfg.app, creds.token)
            return await use(folder_sync, remote, cfg)
    finally:
        await folder_sync.close()


LOCK_WAIT_S = 0.2  # how often a command retries the lock another short command holds


async def _open_beside_run(folder_sync: FolderSync, cfg: config.FolderConfig) -> None:
    """Open the folder with its lock; when a ``run`` holds it, open it without (the command
    then asks that process for its cycle: ``_cycle``); when another short command holds it,
    wait for it. Never "already syncing", except for a second ``run``."""
    said = False
    while True:
        try:
            await folder_sync.open(exclusive=True)
            return
        except FolderBusy:
            going = await asyncio.to_thread(runstate.running, cfg.state_dir)
            if going is not None:
                await folder_sync.open(exclusive=False)
                return
        if not said:
            log.info("waiting for another couchgate-sync to finish with this folder")
            said = True
        await asyncio.sleep(LOCK_WAIT_S)


async def _cycle(
    folder_sync: FolderSync, remote: Remote, cfg: config.FolderConfig
) -> Counts | None:
    """One full cycle: by this process when it holds the folder's lock, else by the running
    ``run`` (None: that process logs what it did)."""
    if folder_sync.locked:
        return await folder_sync.cycle(remote)
    going = await asyncio.to_thread(runstate.running, cfg.state_dir)
    if going is None:
        raise runstate.RunGone(0)
    await runstate.ask_for_cycle(going, cfg.state_dir)
    log.info("synced by the running couchgate-sync (pid %d)", going.pid)
    return None


async def _record_first(folder_sync: FolderSync, remote: Remote, cfg: config.FolderConfig) -> None:
    """Record what is in the folder now (kept as versions) before writing back into it: by
    this process offline when it holds the lock, else by the running ``run``'s full cycle (a
    second process never cycles a folder ``run`` holds)."""
    if folder_sync.locked:
        await folder_sync.cycle(None)
    else:
        await _cycle(folder_sync, remote, cfg)


async def _sync(args: argparse.Namespace) -> int:
    async def once(folder_sync: FolderSync, remote: Remote, cfg: config.FolderConfig) -> int:
        counts = await _cycle(folder_sync, remote, cfg)
        if counts is None:
            return 0
        log.info("synced: %s", describe(counts) or "nothing to do")
        return failures.sync_outcome(folder_sync.context.state, counts.waiting)

    return await _with_folder(args.dir, once)


async def _run(args: argparse.Namespace) -> int:
    cfg, _, _ = await asyncio.to_thread(_open, args.dir)
    await asyncio.to_thread(folder.require, Path(cfg.folder))  # at start: a clear error
    going = await asyncio.to_thread(runstate.running, cfg.state_dir)
    if going is not None:
        raise FolderBusy(f"couchgate-sync run is already going for this folder (pid {going.pid})")

    async def forever(folder_sync: FolderSync, remote: Remote, cfg: config.FolderConfig) -> int:
        if not folder_sync.locked:  # a run that started at the same moment holds it
            raise FolderBusy("couchgate-sync run is already going for this folder")
        log.info("watching the folder and the server; Ctrl-C stops")
        creds = await asyncio.to_thread(credentials.load, cfg.key)
        assert creds is not None  # _with_folder checked it

        async def reseal() -> int:
            return await sharing.reseal_changed(remote.session, cfg, creds)

        def signed_in() -> bool:
            return credentials.load(cfg.key) is not None

        await Runner(folder_sync, remote, after_upload=reseal, signed_in=signed_in).run()
        return 0

    return await _with_folder(args.dir, forever)


async def _status(args: argparse.Namespace) -> int:
    async def show(folder_sync: FolderSync, remote: Remote, cfg: config.FolderConfig) -> int:
        report = await history.status(folder_sync.context, remote, cfg)
        print(report)
        return 0

    return await _with_folder(args.dir, show, exclusive=False)


async def _pair(args: argparse.Namespace) -> int:
    cfg, creds, keyring = await asyncio.to_thread(_open, args.dir)
    async with aiohttp.ClientSession() as session:
        code = await Auth(session, cfg.server).make_link(creds.token)
    link = pairing_link(cfg.server, code, creds.key)
    print("Open this on the other device (or: couchgate-sync join SERVER DIR --pair 'LINK').")
    print("It carries your key: anyone holding it can read your notes. Single use.\n")
    print(link)
    print()
    print(keyring.qr("text"))
    return 0


async def _history(args: argparse.Namespace) -> int:
    async def show(folder_sync: FolderSync, remote: Remote, _: config.FolderConfig) -> int:
        if args.deleted:
            print(await history.list_deleted(folder_sync.context))
        elif args.path:
            print(await history.list_versions(folder_sync.context, folder_sync.contents, args.path))
        else:
            raise RemoteError("give a PATH, or --deleted")
        return 0

    return await _with_folder(args.dir, show, exclusive=False)


async def _restore(args: argparse.Namespace) -> int:
    async def bring_back(folder_sync: FolderSync, remote: Remote, cfg: config.FolderConfig) -> int:
        context, contents = folder_sync.context, folder_sync.contents
        if args.path.endswith("/") or args.path == ".":
            await _record_first(folder_sync, remote, cfg)
            print(await rewind.restore_dir(context, contents, args.path))
        else:
            print(await history.restore(context, contents, args.path, args.version))
        await _cycle(folder_sync, remote, cfg)
        return 0

    return await _with_folder(args.dir, bring_back)


async def _deletions(args: argparse.Namespace) -> int:
    async def decide(folder_sync: FolderSync, remote: Remote, cfg: config.FolderConfig) -> int:
        context = folder_sync.context
        if args.action == "confirm":
            count = await deletions.confirm(context)
            print(f"{count} deletion(s) confirmed")
        else:
            count = await deletions.undo(context, folder_sync.contents)
            print(f"{count} file(s) written back")
        if count and (counts := await _cycle(folder_sync, remote, cfg)) is not None:
            log.info("synced: %s", describe(counts) or "nothing to do")
        return 0

    return await _with_folder(args.dir, decide)


async def _rewind(args: argparse.Namespace) -> int:
    to_ms: int = args.to

    async def back(folder_sync: FolderSync, remote: Remote, cfg: config.FolderConfig) -> int:
        await _record_first(folder_sync, remote, cfg)
        print(await rewind.rewind(folder_sync.context, folder_sync.contents, to_ms, args.path))
        if (counts := await _cycle(folder_sync, remote, cfg)) is not None:
            log.info("synced: %s", describe(counts) or "nothing to do")
        return 0

    return await _with_folder(args.dir, back)
