"""``couchgate users export USER FILE`` and ``couchgate users import USER FILE``: moving a
person between servers as their admin (wired into gateway/cli.py).

The same archive as ``/account/api/export``, written and read a chunk at a time (file I/O off
the event loop): sealed as stored, so the admin moves ciphertext and learns nothing from it.
The account must exist on the target first (``couchgate users add``).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from gateway.archive.exporter import export_lines
from gateway.archive.files import CHUNK, file_chunks
from gateway.archive.importer import Importer
from gateway.auth.records import IdentityStore
from gateway.auth.records.users import User
from gateway.auth.signing import AuthKeys
from gateway.errors import CouchError
from gateway.helptext import command, fail
from gateway.upstream.backend import Backend


def add_parsers(users: Any) -> None:
    """Add ``export`` and ``import`` to the ``users`` group of the CLI."""
    out = command(
        users,
        "export",
        "write one user's data, still encrypted, to a file",
        "Write every app of one user to FILE (newline-delimited JSON): every document with its\n"
        "revision history and conflicts, and its attachments, as sealed as they are stored.\n"
        "Another couchgate loads it with `couchgate users import`.",
        "couchgate users export you@example.org you.ndjson",
    )
    out.add_argument("user", help="user id or email address")
    out.add_argument("file", help="the archive to write")
    into = command(
        users,
        "import",
        "load a user's exported data into their account here",
        "Load an archive written by `couchgate users export` (or /account/api/export) into an\n"
        "account on this server, revisions preserved, so the person's devices carry on\n"
        "replicating. Safe to run again: revisions already here are skipped.",
        "couchgate users add you@example.org && couchgate users import you@example.org you.ndjson",
    )
    into.add_argument("user", help="user id or email address (the account must exist)")
    into.add_argument("file", help="the archive to read")


async def _user(backend: Backend, who: str) -> User | None:
    identities = IdentityStore(backend.records)
    uid = await identities.uid_named(who, AuthKeys.from_settings(backend.settings).email_hmac)
    return None if uid is None else await identities.user(uid)


async def export_user(backend: Backend, args: argparse.Namespace) -> int:
    user = await _user(backend, args.user)
    if user is None:
        return fail(f"no such user: {args.user}")
    path = Path(args.file)
    docs = 0
    with await asyncio.to_thread(path.open, "wb") as out:
        pending: list[bytes] = []
        size = 0
        try:
            async for line in export_lines(backend, user):
                docs += line.startswith(b'{"type":"doc"')
                pending.append(line)
                size += len(line)
                if size >= CHUNK:
                    await asyncio.to_thread(out.writelines, pending)
                    pending, size = [], 0
        except CouchError as exc:
            return fail(f"the export stopped: {exc.reason}")
        await asyncio.to_thread(out.writelines, pending)
    print(f"exported {docs} revision(s) of {len(user.apps)} app(s) of user {user.uid}")
    return 0


async def import_user(backend: Backend, args: argparse.Namespace) -> int:
    user = await _user(backend, args.user)
    if user is None:
        return fail(f"no such user here: {args.user} (add the account first)")
    path = Path(args.file)
    if not await asyncio.to_thread(path.is_file):
        return fail(f"no such file: {args.file}")
    importer = Importer(backend, IdentityStore(backend.records), user.uid)
    try:
        report = await importer.load(file_chunks(path), backend.settings.max_request_size)
    except CouchError as exc:
        return fail(f"the import stopped: {exc.reason}")
    loaded = sum(report.loaded.values())
    present = sum(report.present.values())
    print(f"imported {loaded} revision(s) for user {user.uid} ({present} were here already)")
    return 0
