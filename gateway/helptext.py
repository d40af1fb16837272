"""How every ``couchgate`` command is declared, so each ``--help`` reads as help for a person:
what the command does in a few lines, then an example of it in use (argparse would otherwise
re-wrap the text and lose the example's layout)."""

from __future__ import annotations

import argparse
from typing import Any


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
