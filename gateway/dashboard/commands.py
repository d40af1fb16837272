"""``couchgate admin set-password``: the CLI half of the dashboard (wired into gateway/cli.py).

The password is read from a prompt (twice, not echoed) or, for scripts, from ``--stdin``; never
from an argument, where it would land in shell history and ``ps``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from gateway.dashboard.records import MIN_PASSWORD_LENGTH, AdminRecords
from gateway.helptext import command, fail, group
from gateway.upstream.backend import Backend


def add_parser(commands: Any) -> None:
    """Add the ``admin`` group to the CLI's sub-parsers."""
    admin = group(
        commands,
        "admin",
        "the admin dashboard",
        "Manage the admin dashboard at /admin/.",
        "couchgate admin set-password",
    )
    set_password = command(
        admin,
        "set-password",
        "set the password of the admin dashboard (/admin/)",
        "Set the password of the admin dashboard at /admin/. It is asked for twice and not\n"
        "echoed, or read from standard input with --stdin; it is stored as an Argon2id hash in\n"
        "the records database, so every replica accepts it, and signs out every other session.",
        "couchgate admin set-password\n"
        "printf '%s\\n' \"$PASSWORD\" | couchgate admin set-password --stdin",
    )
    set_password.add_argument(
        "--stdin", action="store_true", help="read the password from standard input"
    )


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New admin password: ")
    return first if first == getpass.getpass("Repeat it: ") else None


async def set_password(backend: Backend, args: argparse.Namespace) -> int:
    password = _read_password(args.stdin)
    if password is None:
        return fail("the two passwords differ")
    if len(password) < MIN_PASSWORD_LENGTH:
        return fail(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    await AdminRecords(backend.records).set_password(password)
    print("admin password set; sign in at /admin/")
    return 0
