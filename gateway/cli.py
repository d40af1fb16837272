"""The ``couchgate`` command: ``main(argv) -> int``, every error one line and exit status 2.

All commands read the same settings as ``serve`` (defaults < ``--config`` file < environment <
flags), so an admin's ``users add`` talks to the same upstream the server does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from gateway import __version__
from gateway.app import create_app, open_upstream, runner_options
from gateway.auth.records import IdentityStore, iso
from gateway.auth.signing import AuthKeys
from gateway.auth.tokens import is_email
from gateway.backend import Backend
from gateway.config import ConfigError, Settings, env_name, load_settings
from gateway.dashboard import commands as admin_commands
from gateway.diagnose import diagnose
from gateway.embedded import data_dir, local_secret_key
from gateway.limits import quota_for
from gateway.logs import setup_logging
from gateway.quotas import db_usage

EXIT_OK, EXIT_ERROR = 0, 2


class CommandError(Exception):
    """A failure an admin can act on; its text is the one line printed."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="couchgate", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"couchgate {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="address to listen on")
    serve.add_argument("--port", type=int, help="port to listen on")
    serve.add_argument("--upstream-url", help="CouchDB base URL (default: the embedded store)")
    serve.add_argument("--data-dir", help="directory of the embedded store's data")

    commands.add_parser(
        "check", help="diagnose configuration, upstream, auth mode, size limits, CORS and SMTP"
    )

    users = commands.add_parser("users", help="manage accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = users.add_parser("add", help="create an account and print an enrollment code")
    add.add_argument("email")
    add.add_argument("--json", action="store_true", help="print {user, enrollment_code}")
    listing = users.add_parser("list", help="list accounts")
    listing.add_argument("--json", action="store_true")
    remove = users.add_parser("remove", help="delete an account, its devices and its data")
    remove.add_argument("user", help="user id or email address")
    usage = users.add_parser("usage", help="documents and bytes stored, per user and app")
    usage.add_argument("user", nargs="?", help="user id or email address (default: everyone)")
    usage.add_argument("--json", action="store_true")

    devices = commands.add_parser("devices", help="manage devices").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    dev_list = devices.add_parser("list", help="list devices")
    dev_list.add_argument("--user", help="only this user's devices")
    dev_list.add_argument("--json", action="store_true")
    revoke = devices.add_parser("revoke", help="revoke a device at once")
    revoke.add_argument("device", help="device id")
    admin_commands.add_parser(commands)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if args.command == "serve":
        overrides = {
            "host": args.host,
            "port": args.port,
            "upstream_url": args.upstream_url,
            "data_dir": args.data_dir,
        }
    try:
        return load_settings(config_file=args.config, overrides=overrides)
    except ConfigError as exc:
        if exc.setting != "secret_keys" or env_name("secret_keys") in os.environ:
            raise
        # No key given at all: a self-contained install (embedded store) keeps its own.
        placeholder = "x" * 32
        probe = load_settings(
            config_file=args.config, overrides={**overrides, "secret_keys": placeholder}
        )
        if probe.upstream_configured or probe.secret_keys != (placeholder,):
            raise
        key = local_secret_key(data_dir(probe))
        return load_settings(config_file=args.config, overrides={**overrides, "secret_keys": key})


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        if args.command == "serve":
            return _serve(settings)
        if args.command == "check":
            return asyncio.run(
                _with_backend(settings, lambda backend: _check(backend, settings), ensure=False)
            )
        handler = _COMMANDS[(args.command, getattr(args, "action", None))]
        return asyncio.run(_with_backend(settings, lambda backend: handler(backend, args)))
    except (ConfigError, CommandError) as exc:
        print(f"couchgate: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (aiohttp.ClientError, OSError) as exc:
        print(
            f"couchgate: the upstream at {_where(args)} is not reachable ({type(exc).__name__})",
            file=sys.stderr,
        )
        return EXIT_ERROR


def _where(args: argparse.Namespace) -> str:
    try:
        return _settings(args).upstream_url or "embedded store"
    except ConfigError:
        return "?"


async def _with_backend(
    settings: Settings, run: Callable[[Backend], Awaitable[int]], *, ensure: bool = True
) -> int:
    async with open_upstream(settings) as backend:
        if ensure:
            await backend.ensure_records()
        return await run(backend)


def _serve(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT; then stop accepting, end live feeds cleanly, give requests
    in flight ``shutdown_timeout`` seconds, and close the upstream last."""
    setup_logging(settings)
    log = logging.getLogger("couchgate")
    if settings.email_delivery == "console":
        log.warning("email_delivery=console: sign-in codes are printed here, not emailed")
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        print=None,
        shutdown_timeout=settings.shutdown_timeout,
        **runner_options(settings),
    )
    return EXIT_OK


def _print_json(value: Any) -> None:
    print(json.dumps(value, separators=(",", ":")))


def _emit(rows: list[dict[str, Any]], as_json: bool, line: Callable[[dict[str, Any]], str]) -> None:
    """A listing: one JSON line for scripts, or one text line per row for people."""
    if as_json:
        _print_json(rows)
    else:
        for row in rows:
            print(line(row))


async def _users_add(backend: Backend, args: argparse.Namespace) -> int:
    if not is_email(args.email):
        raise CommandError(f"{args.email!r} is not an email address")
    identities = IdentityStore(backend.records)
    email_hmac = AuthKeys.from_settings(backend.settings).email_hmac(args.email)
    uid, created = await identities.create_user(email_hmac)
    code, expires = await identities.create_grant("enroll", uid)
    if args.json:
        _print_json({"user": uid, "enrollment_code": code})
    else:
        print(f"user {uid} ({'created' if created else 'already existed'})")
        print(f"enrollment code: {code}  (single use, until {iso(expires)})")
    return EXIT_OK


async def _users_list(backend: Backend, args: argparse.Namespace) -> int:
    identities = IdentityStore(backend.records)
    devices = await identities.all_devices()
    rows: list[dict[str, Any]] = [
        {
            "user": u.uid,
            "created": iso(u.created),
            "apps": list(u.apps),
            "devices": sum(1 for d in devices if d.uid == u.uid),
        }
        for u in sorted(await identities.users(), key=lambda u: u.created)
    ]
    _emit(
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
    uid: str | None = args.user
    if "@" in args.user:
        uid = await identities.user_for_email(
            AuthKeys.from_settings(backend.settings).email_hmac(args.user)
        )
    user = None if uid is None else await identities.remove_user(uid)
    if user is None:
        raise CommandError(f"no such user: {args.user}")
    for app in user.apps:
        await backend.delete_user_db(user.uid, app)
    print(f"removed user {user.uid} and {len(user.apps)} database(s)")
    return EXIT_OK


async def _devices_list(backend: Backend, args: argparse.Namespace) -> int:
    identities = IdentityStore(backend.records)
    devices = await (identities.devices(args.user) if args.user else identities.all_devices())
    rows = [{"user": d.uid, **d.public()} for d in sorted(devices, key=lambda d: d.created)]
    _emit(
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
    for device in await identities.all_devices():
        if device.device == args.device:
            await identities.revoke_device(device.uid, device.device)
            print(f"revoked device {device.device} of user {device.uid}")
            return EXIT_OK
    raise CommandError(f"no such device: {args.device}")


async def _users_usage(backend: Backend, args: argparse.Namespace) -> int:
    identities = IdentityStore(backend.records)
    users = await identities.users()
    if args.user:
        uid: str | None = args.user
        if "@" in args.user:
            uid = await identities.user_for_email(
                AuthKeys.from_settings(backend.settings).email_hmac(args.user)
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
        _print_json(rows)
    else:
        for row in rows:
            print(
                f"{row['user']}  {row['app']}  docs {row['docs']}/{row['quota_docs'] or '-'}  "
                f"bytes {row['bytes']}/{row['quota_bytes'] or '-'}"
            )
    return EXIT_OK


async def _check(backend: Backend, configured: Settings) -> int:
    """Print every finding (see :mod:`gateway.diagnose`); exit 2 if any is a problem."""
    findings = await diagnose(backend, configured)
    for finding in findings:
        print(finding.line())
    problems = sum(1 for f in findings if f.level == "problem")
    if problems:
        print(f"couchgate: {problems} problem(s) found", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


_COMMANDS: dict[tuple[str, str | None], Callable[[Backend, argparse.Namespace], Awaitable[int]]] = {
    ("users", "add"): _users_add,
    ("users", "list"): _users_list,
    ("users", "remove"): _users_remove,
    ("users", "usage"): _users_usage,
    ("devices", "list"): _devices_list,
    ("devices", "revoke"): _devices_revoke,
    ("admin", "set-password"): admin_commands.set_password,
}
