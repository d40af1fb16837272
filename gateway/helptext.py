"""How every ``couchgate`` command is declared, so each ``--help`` reads as help for a person:
what the command does in a few lines, then an example of it in use (argparse would otherwise
re-wrap the text and lose the example's layout); and how a command answers: its exit code, a
failure an admin can act on, a listing for people or for scripts."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

# Exit codes, the same for ``couchgate`` and ``couchgate-sync`` (docs/deploy.md): 0 done;
# 1 the command could not do its work (one line on stderr says why); 2 the command line or the
# settings are wrong (argparse's own code); 130 interrupted.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A failure an admin can act on; its text is the one line printed."""


def fail(message: str) -> int:
    """Say why a command could not do its work, in one line on stderr, and give its exit code."""
    print(f"couchgate: {message}", file=sys.stderr)
    return EXIT_FAILED


def command(
    group: Any, name: str, summary: str, description: str, example: str
) -> argparse.ArgumentParser:
    """One sub-command whose --help says what it does and shows how it is used."""
    parser: argparse.ArgumentParser = group.add_parser(
        name,
        help=summary,
        description=description,
        epilog="example:\n" + "\n".join(f"  {line}" for line in example.splitlines()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def group(commands: Any, name: str, summary: str, description: str, example: str) -> Any:
    """A command with actions (``couchgate users add``); its own --help lists them."""
    parser = command(commands, name, summary, description, example)
    return parser.add_subparsers(dest="action", required=True, metavar="ACTION")


def print_json(value: Any) -> None:
    print(json.dumps(value, separators=(",", ":")))


def emit(rows: list[dict[str, Any]], as_json: bool, line: Callable[[dict[str, Any]], str]) -> None:
    """A listing: one JSON line for scripts, or one text line per row for people."""
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            print(line(row))
