"""``python -m encryption_plugin``: make, convert, show and fingerprint app keys.

Commands read an existing key from ``--key-file`` or, by default, from standard input, never
from the command line (where it would land in the shell history and the process list)::

    python -m encryption_plugin keygen notes > notes.key
    python -m encryption_plugin export --base32 --key-file notes.key
    python -m encryption_plugin qr --key-file notes.key            # terminal QR code
    python -m encryption_plugin qr --png key.png --key-file notes.key
    python -m encryption_plugin fingerprint --key-file notes.key
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .codec import b64u_encode
from .errors import CryptoError
from .keys import Keyring


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m encryption_plugin", description="ep1 app keys for couchgate."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    keygen = commands.add_parser("keygen", help="make a new random key and print its export")
    keygen.add_argument("app_id", help="the app id, [a-z0-9.-]{1,64}")
    keygen.add_argument("--base32", action="store_true", help="print the typeable base32 form")

    def key_source(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--key-file", type=Path, help="file holding the export (default: standard input)"
        )

    export = commands.add_parser("export", help="print a key in the other export form")
    key_source(export)
    export.add_argument("--base32", action="store_true", help="print the base32 form")

    qr = commands.add_parser("qr", help="show a key as a QR code (terminal, --png or --svg)")
    key_source(qr)
    target = qr.add_mutually_exclusive_group()
    target.add_argument("--png", type=Path, metavar="FILE", help="write a PNG instead")
    target.add_argument("--svg", type=Path, metavar="FILE", help="write an SVG instead")
    qr.add_argument("--scale", type=int, default=8, help="pixels per module in PNG/SVG")

    fingerprint = commands.add_parser("fingerprint", help="print app id, kid and fingerprint")
    key_source(fingerprint)
    return parser


def _read_key(path: Path | None) -> Keyring:
    text = sys.stdin.read() if path is None else path.read_text(encoding="utf-8")
    return Keyring.from_export(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 1 on a bad key or file, 2 on bad usage (argparse)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "keygen":
            keyring = Keyring.generate(args.app_id)
            print(keyring.export_base32() if args.base32 else keyring.export())
            return 0
        keyring = _read_key(args.key_file)
        if args.command == "export":
            print(keyring.export_base32() if args.base32 else keyring.export())
        elif args.command == "fingerprint":
            print(f"app_id: {keyring.app_id}")
            print(f"kid: {b64u_encode(keyring.kid)}")
            print(f"fingerprint: {keyring.fingerprint()}")
        elif args.png is not None:
            args.png.write_bytes(keyring.qr("png", scale=args.scale))
        elif args.svg is not None:
            args.svg.write_text(keyring.qr("svg", scale=args.scale), encoding="utf-8")
        else:
            sys.stdout.write(keyring.qr("text"))
    except (CryptoError, ValueError, OSError) as exc:
        # Messages never contain key material (see errors.py), so they are safe to print.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
