"""The ``couchgate`` command: ``main(argv) -> int``, every error one line and exit status 2.

All commands read the same settings as ``serve`` (defaults < ``--config`` file < environment <
flags), so an admin's ``users add`` talks to the same upstream the server does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
from aiohttp import web

from gateway import __version__
from gateway.accounts import commands as account_commands
from gateway.app import create_app, open_upstream, runner_options
from gateway.archive import admin as archive_commands
from gateway.config import Settings, load_settings
from gateway.config_values import ConfigError, env_name
from gateway.dashboard import commands as admin_commands
from gateway.helptext import EXIT_OK, EXIT_USAGE, CommandError, command, fail
from gateway.ops.logs import setup_logging
from gateway.upstream import store_cli
from gateway.upstream.backend import Backend
from gateway.upstream.diagnose import diagnose
from gateway.upstream.embedded import data_dir, local_secret_key
from gateway.web import links, listening

DESCRIPTION = """\
couchgate: an end-to-end-encrypted sync server for local-first apps. Devices replicate their
PouchDB or CouchDB databases through it; it signs people in without passwords and keeps each
user's data in databases of their own. Every command reads the same settings (defaults, then
--config FILE, then COUCHGATE_* environment variables, then flags)."""

EXAMPLES = """\
examples:
  couchgate serve                          # listen on 127.0.0.1:5980, data in the embedded store
  couchgate users add you@example.org      # an enrollment code and link for a first device
  couchgate admin set-password             # then sign in to the dashboard at /admin/
  couchgate check                          # diagnose the configuration and the upstream

Run `couchgate COMMAND --help` for one command's options."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="couchgate",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"couchgate {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = command(
        commands,
        "serve",
        "run the sync server",
        "Run the sync server until Ctrl+C or SIGTERM. Without an upstream CouchDB it keeps the\n"
        "data in its own embedded store (a directory of SQLite files). Once it listens it prints\n"
        "where, and what to do next.",
        "couchgate serve --host 0.0.0.0 --port 8080\n"
        "COUCHGATE_UPSTREAM_USER=admin COUCHGATE_UPSTREAM_PASSWORD=... \\\n"
        "  couchgate serve --upstream-url http://127.0.0.1:5984   # in front of CouchDB",
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 5980)")
    serve.add_argument("--upstream-url", help="CouchDB base URL (default: the embedded store)")
    serve.add_argument("--data-dir", help="directory of the embedded store's data")
    serve.add_argument(
        "--log-format", choices=["text", "json"], help="log lines as text or one JSON object each"
    )

    command(
        commands,
        "check",
        "diagnose the configuration and the upstream",
        "Check the settings, whether the upstream answers and accepts couchgate's credentials,\n"
        "its auth mode, size limits, CORS and SMTP. Prints one line per finding; exits with\n"
        "status 2 if any is a problem.",
        "couchgate check",
    )

    users = account_commands.add_parsers(commands)
    archive_commands.add_parsers(users)  # users export, users import

    admin_commands.add_parser(commands)
    store_cli.add_parser(commands)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if args.command == "serve":
        overrides = {
            "host": args.host,
            "port": args.port,
            "upstream_url": args.upstream_url,
            "data_dir": args.data_dir,
            "log_format": args.log_format,
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
        if args.command == "store":
            return store_cli.run(args, data_dir(settings))
        if args.command == "check":
            return asyncio.run(
                _with_backend(settings, lambda backend: _check(backend, settings), ensure=False)
            )
        handler = _COMMANDS[(args.command, getattr(args, "action", None))]
        return asyncio.run(_with_backend(settings, lambda backend: handler(backend, args)))
    except ConfigError as exc:
        print(f"couchgate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CommandError as exc:
        return fail(str(exc))
    except (aiohttp.ClientError, OSError) as exc:
        return fail(f"the upstream at {_where(args)} is not reachable ({type(exc).__name__})")


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
    try:
        web.run_app(
            create_app(settings),
            loop=event_loop(),
            host=settings.host,
            port=settings.port,
            # aiohttp calls this once every listening socket is open: the moment to say "ready".
            print=lambda *_: _announce(settings),
            shutdown_timeout=settings.shutdown_timeout,
            **runner_options(settings),
        )
    finally:
        listening.forget(settings)  # the record lives as long as the process
    return EXIT_OK


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it is installed (it is a dependency on Linux and macOS): the
    proxy's per-request work is mostly the loop's and the transports'; else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def ready_fields(settings: Settings) -> dict[str, str]:
    """Where ``serve`` can be reached and what to do next, for the start-up announcement."""
    base = links.site_url(settings)
    return {
        "url": base + "/",
        "admin_url": base + "/admin/",
        "demo_url": base + "/demo/",
        # A placeholder, not an address: log lines never carry one.
        "next_step": "couchgate users add <email>",
    }


def _announce(settings: Settings) -> None:
    """Say once, as Jupyter or Grafana do, where couchgate listens and what to do next: a block
    for a person at a terminal, or one structured line for a log pipeline."""
    listening.record(settings)  # for `couchgate users add` in another terminal
    fields = ready_fields(settings)
    if settings.log_format == "json":
        logging.getLogger("couchgate").info("couchgate is ready", extra=fields)
        return
    where = (
        f"data in {data_dir(settings)}"
        if not settings.upstream_configured
        else "in front of the upstream CouchDB"
    )
    print(
        f"\ncouchgate {__version__} is ready at {fields['url']} ({where})\n\n"
        f"  admin dashboard  {fields['admin_url']}"
        "  (set its password: couchgate admin set-password)\n"
        f"  demo app         {fields['demo_url']}\n"
        f"  next step        in another terminal, `{fields['next_step']}`\n"
        "                   prints an enrollment link that signs a first device in\n\n"
        "Press Ctrl+C to stop.\n",
        file=sys.stderr,
        flush=True,
    )


async def _check(backend: Backend, configured: Settings) -> int:
    """Print every finding (see :mod:`gateway.upstream.diagnose`); exit 1 if any is a problem."""
    findings = await diagnose(backend, configured)
    for finding in findings:
        print(finding.line())
    problems = sum(1 for f in findings if f.level == "problem")
    if problems:
        return fail(f"{problems} problem(s) found")
    return EXIT_OK


_COMMANDS: dict[tuple[str, str | None], Callable[[Backend, argparse.Namespace], Awaitable[int]]] = {
    **account_commands.COMMANDS,
    ("users", "export"): archive_commands.export_user,
    ("users", "import"): archive_commands.import_user,
    ("admin", "set-password"): admin_commands.set_password,
}
