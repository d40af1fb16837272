"""An archive file read a chunk at a time, each read off the event loop: what an import sends
or loads (``couchgate users import``, ``couchgate-sync import``), so nothing holds the archive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

CHUNK = 1024 * 1024


async def file_chunks(path: Path, size: int = CHUNK) -> AsyncIterator[bytes]:
    source = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(source.read, size):
            yield chunk
    finally:
        source.close()
