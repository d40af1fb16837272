"""``python -m couchlite --data-dir D --port P --admin-user U --admin-password W``.

Runs the store alone (used by the durability test and the benchmark; couchgate itself mounts it
in-process).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from aiohttp import web

from .server import create_store_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m couchlite", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5984)
    parser.add_argument("--admin-user", required=True)
    parser.add_argument("--admin-password", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    app = create_store_app(
        args.data_dir, admin_user=args.admin_user, admin_password=args.admin_password
    )
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
