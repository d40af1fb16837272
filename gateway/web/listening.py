"""Where a running ``couchgate serve`` listens, kept in its data directory for the life of the
process, so that ``couchgate users add`` in another terminal links to the port serve really
uses (``--port``, ``COUCHGATE_PORT``) without ``public_url`` being configured.

The record names the process; one whose process is gone (kill -9) is not believed.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from gateway.config import Settings
from gateway.upstream.embedded import data_dir
from gateway.web import links

RECORD = "listening.json"


def _path(settings: Settings) -> Path:
    return data_dir(settings) / RECORD


def record(settings: Settings) -> None:
    """Say where this process listens (once its sockets are open)."""
    path = _path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"url": links.listening_url(settings), "pid": os.getpid()}))
    os.replace(tmp, path)


def forget(settings: Settings) -> None:
    """Take the record back at exit, if it is still this process's."""
    if _recorded_by(settings) == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            _path(settings).unlink()


def _read(settings: Settings) -> dict[str, object] | None:
    try:
        raw = json.loads(_path(settings).read_text())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def _recorded_by(settings: Settings) -> int | None:
    raw = _read(settings)
    pid = raw.get("pid") if raw else None
    return pid if isinstance(pid, int) else None


def recorded(settings: Settings) -> str | None:
    """The address a running serve of this data directory recorded, else None."""
    raw = _read(settings)
    pid, url = _recorded_by(settings), raw.get("url") if raw else None
    if pid is None or not isinstance(url, str):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # it ended without taking the record back
    except PermissionError:
        pass  # alive, as another user
    return url


def site_url(settings: Settings) -> str:
    """Where people reach couchgate, from another process: ``public_url``, else where a running
    serve recorded it listens, else where the settings say it would."""
    return links.public_base(settings) or recorded(settings) or links.listening_url(settings)
