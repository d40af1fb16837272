"""Requests as raw bytes on a socket: what no HTTP client library would send."""

from __future__ import annotations

import asyncio
import contextlib


async def exchange(port: int, raw: bytes, *, timeout: float = 10.0) -> bytes:  # noqa: ASYNC109
    """Send ``raw`` and read until the server closes or ``timeout`` seconds pass."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(timeout):
                while chunk := await reader.read(65536):
                    chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def status_of(answer: bytes) -> int | None:
    """The status code of the first response in ``answer``, or None when there is none."""
    line = answer.split(b"\r\n", 1)[0].split(b" ")
    if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit():
        return int(line[1])
    return None
