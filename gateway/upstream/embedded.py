"""The embedded upstream: with no CouchDB configured, couchgate serves its own SQLite-backed,
CouchDB-compatible store in the same process and proxies to it over loopback HTTP, exactly as to
a real CouchDB. Only this process knows the store's address and its (random, per start) admin
password, so nothing else on the machine can reach the data around the gateway's checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import platformdirs
from aiohttp import web

from couchlite.server import create_store_app
from gateway.config import Settings

log = logging.getLogger(__name__)

ADMIN_USER = "couchgate"


def data_dir(settings: Settings) -> Path:
    """Where the embedded store keeps its data: ``data_dir``, else the user's data directory."""
    return Path(settings.data_dir or platformdirs.user_data_dir("couchgate"))


def local_secret_key(directory: Path) -> str:
    """The secret key of a self-contained install, made on first start and kept (0600) beside
    the data it protects, so ``couchgate serve`` needs no configuration at all."""
    path = directory / "secret_key"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


@contextlib.asynccontextmanager
async def embedded_upstream(settings: Settings) -> AsyncIterator[Settings]:
    """Run the store for the life of the block; yields the settings that point at it."""
    directory = data_dir(settings)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    password = secrets.token_urlsafe(32)
    store = create_store_app(
        directory,
        admin_user=ADMIN_USER,
        admin_password=password,
        max_request_size=settings.max_request_size,
    )
    runner = web.AppRunner(store, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        log.info("embedded store: data in %s", directory)
        yield dataclasses.replace(
            settings,
            upstream_url=f"http://{host}:{port}",
            upstream_user=ADMIN_USER,
            upstream_password=password,
            upstream_auth="admin",
        )
    finally:
        await runner.cleanup()
