"""Calls on the server's account-level APIs (``/shares/api``, ``/account/api/...``) as this
folder's device, with errors in words; shared by ``sharing`` and ``portable``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from encryption_plugin import Keyring

from . import config, credentials
from .remote import RemoteError, Unreachable, refusal


def open_folder(folder_arg: Path) -> tuple[config.FolderConfig, credentials.Credentials]:
    """The joined folder's settings and credentials (blocking: call off the event loop)."""
    cfg = config.load(folder_arg.expanduser().resolve())
    creds = credentials.load(cfg.key)
    if creds is None:
        raise config.NotJoined(Path(cfg.folder))
    Keyring.from_export(creds.key, app_id=cfg.app)  # a damaged key is said before any call
    return cfg, creds


def headers(creds: credentials.Credentials) -> dict[str, str]:
    return {"Authorization": f"Bearer {creds.token}", "Accept": "application/json"}


def refused(status: int, raw: bytes) -> RemoteError:
    """The server's answer to an account-level call, in the words of ``remote.refusal``."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    return refusal(status, body)


async def call(
    session: aiohttp.ClientSession,
    cfg: config.FolderConfig,
    creds: credentials.Credentials,
    method: str,
    path: str,
    body: object = None,
) -> Any:
    try:
        async with session.request(
            method, cfg.server + path, json=body, headers=headers(creds)
        ) as resp:
            raw = await resp.read()
            if resp.status >= 300:
                raise refused(resp.status, raw)
            return json.loads(raw) if raw else None
    except aiohttp.ClientConnectionError as exc:
        raise Unreachable(type(exc).__name__) from None
