"""``couchgate users ...`` and ``couchgate devices ...``: accounts and their devices, as their
admin manages them from a shell (wired into gateway/cli.py). ``users export`` and ``users import``
are gateway/archive/admin.py's."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.auth.records import IdentityStore
from gateway.auth.records.base import iso
from gateway.auth.signing import AuthKeys
from gateway.auth.tokens import is_email
from gateway.config_values import env_name
from gateway.helptext import EXIT_OK, CommandError, command, emit, group, print_json
from gateway.limits.quotas import db_usage
from gateway.limits.rates import quota_for
from gateway.shares.store import ShareStore
from gateway.upstream.backend import Backend
from gateway.web import links, listening

Command = Callable[[Backend, argparse.Namespace], Awaitable[int]]


def add_parsers(commands: Any) -> Any:
    """The ``users`` and ``devices`` groups; returns ``users``, for the archive's actions."""
    users = group(
        commands,
        "users",
        "add, list and remove accounts",
        "Manage accounts: add one (with an enrollment code), list, remove, see their usage.",
        "couchgate users add you@example.org\ncouchgate users list",
    )
    add = command(
        users,
        "add",
        "create an account and print an enrollment code and link",
        "Create an account for an email address (or reuse the existing one) and print a\n"
        "single-use enrollment code that signs one device in, and the link that opens the demo\n"
        "app with the code filled in (built from COUCHGATE_PUBLIC_URL, else from the listening\n"
        "address). The address itself is not stored, only a keyed hash of it.",
        "couchgate users add you@example.org --qr    # scan the QR code with a phone",
    )
    add.add_argument("email", help="the person's email address")
    add.add_argument("--qr", action="store_true", help="also draw the link as a QR code")
    add.add_argument(
        "--json", action="store_true", help="print one JSON line: {user, enrollment_code, link}"
    )
    listing = command(
        users,
        "list",
        "list accounts",
        "List every account: its id, when it was made, its devices and apps.",
        "couchgate users list --json",
    )
    listing.add_argument("--json", action="store_true", help="print one JSON line")
    remove = command(
        users,
        "remove",
        "delete an account, its devices and its data",
        "Delete an account at once: its devices are signed out and every database of it is\n"
        "deleted from the upstream. There is no undo.",
        "couchgate users remove you@example.org",
    )
    remove.add_argument("user", help="user id or email address")
    usage = command(
        users,
        "usage",
        "documents and bytes stored, per user and app",
        "Show how many documents and bytes each user stores per app, next to the quotas.",
        "couchgate users usage you@example.org",
    )
    usage.add_argument("user", nargs="?", help="user id or email address (default: everyone)")
    usage.add_argument("--json", action="store_true", help="print one JSON line")
    devices = group(
        commands,
        "devices",
        "list and revoke devices",
        "Manage the devices signed in to accounts.",
        "couchgate devices list\ncouchgate devices revoke f2rd6ktbwmq4xnce",
    )
    dev_list = command(
        devices,
        "list",
        "list devices",
        "List signed-in devices: id, user, name, when made and last seen.",
        "couchgate devices list --user 3ma5lkhyqi7dlkzn",
    )
    dev_list.add_argument("--user", help="only this user's devices")
    dev_list.add_argument("--json", action="store_true", help="print one JSON line")
    revoke = command(
        devices,
        "revoke",
        "sign a device out at once",
        "Revoke a device: its token stops working and its live feeds end within seconds.",
        "couchgate devices revoke f2rd6ktbwmq4xnce",
    )
    revoke.add_argument("device", help="device id (see `couchgate devices list`)")
    return users


async def _users_add(backend: Backend, args: argparse.Namespace) -> int:
    if not is_email(args.email):
        raise CommandError(f"{args.email!r} is not an email address")
    identities = IdentityStore(backend.records)
    email_hmac = AuthKeys.from_settings(backend.settings).email_hmac(args.email)
    uid, created = await identities.users.create(email_hmac)
    code, expires = await identities.grants.create("enroll", uid)
    link = links.enroll_link(listening.site_url(backend.settings), code)
    if args.json:
        print_json({"user": uid, "enrollment_code": code, "link": link})
    else:
        print(f"user {uid} ({'created' if created else 'already existed'})")
        print(f"enrollment code: {code}  (single use, until {iso(expires)})")
        print(f"link: {link}")
        if backend.settings.public_url is None:
            hint = f"set {env_name('public_url')} for a link other machines can open"
            print(f"  (from the listening address; {hint})")
    if args.qr:
        print(links.qr_terminal(link), end="")
    return EXIT_OK


async def _users_list(backend: Backend, args: argparse.Namespace) -> int:
    identities = IdentityStore(backend.records)
    devices = await identities.devices.all()
    rows: list[dict[str, Any]] = [
        {
            "user": u.uid,
            "created": iso(u.created),
            "apps": list(u.apps),
            "devices": sum(1 for d in devices if d.uid == u.uid),
        }
        for u in sorted(await identities.users.all(), key=lambda u: u.created)
    ]
    emit(
        rows,
        args.json,
        lambda row: (
            f"{row['user']}  created {row['created']}  devices {row['devices']}  "
            f"apps {','.join(row['apps']) or '-'}"
        ),
    )
    return EXIT_OK


async def _users_remove(backend: Backend, args: argparse.Namespace) -> int:
    identities = IdentityStore(backend.records)
    uid = await identities.uid_named(args.user, AuthKeys.from_settings(backend.settings).email_hmac)
    user = None if uid is None else await identities.remove_user(uid)
    if user is None:
        raise CommandError(f"no such user: {args.user}")
    deleted = await backend.delete_user_dbs(user.uid, user.apps)
    await ShareStore(backend.records).delete_where(user.uid)
    print(f"removed user {user.uid} and {len(deleted)} database(s)")
    return EXIT_OK


async def _devices_list(backend: Backend, args: argparse.Namespace) -> int:
    identities = IdentityStore(backend.records)
    devices = await (identities.devices.of(args.user) if args.user else identities.devices.all())
    rows = [{"user": d.uid, **d.public()} for d in sorted(devices, key=lambda d: d.created)]
    emit(
        rows,
        args.json,
        lambda row: (
            f"{row['id']}  user {row['user']}  {row['name']!r}  "
            f"created {row['created']}  last seen {row['last_seen']}"
        ),
    )
    return EXIT_OK


async def _devices_revoke(backend: Backend, args: argparse.Namespace) -> int:
    identities = IdentityStore(backend.records)
    for device in await identities.devices.all():
        if device.device == args.device:
            await identities.devices.revoke(device.uid, device.device)
            print(f"revoked device {device.device} of user {device.uid}")
            return EXIT_OK
    raise CommandError(f"no such device: {args.device}")


async def _users_usage(backend: Backend, args: argparse.Namespace) -> int:
    identities = IdentityStore(backend.records)
    users = await identities.users.all()
    if args.user:
        uid = await identities.uid_named(
            args.user, AuthKeys.from_settings(backend.settings).email_hmac
        )
        users = [u for u in users if u.uid == uid]
        if not users:
            raise CommandError(f"no such user: {args.user}")
    rows: list[dict[str, Any]] = []
    for user in sorted(users, key=lambda u: u.created):
        for app in sorted(user.apps):
            usage = await db_usage(backend, user.uid, app, as_admin=True)
            quota = quota_for(backend.settings, app)
            rows.append(
                {
                    "user": user.uid,
                    "app": app,
                    "docs": usage.docs if usage else 0,
                    "bytes": usage.bytes if usage else 0,
                    "quota_docs": quota.docs,
                    "quota_bytes": quota.bytes,
                }
            )
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(
                f"{row['user']}  {row['app']}  docs {row['docs']}/{row['quota_docs'] or '-'}  "
                f"bytes {row['bytes']}/{row['quota_bytes'] or '-'}"
            )
    return EXIT_OK


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("users", "add"): _users_add,
    ("users", "list"): _users_list,
    ("users", "remove"): _users_remove,
    ("users", "usage"): _users_usage,
    ("devices", "list"): _devices_list,
    ("devices", "revoke"): _devices_revoke,
}
