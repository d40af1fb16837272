"""Requests as raw bytes on a socket: what no HTTP client library would send."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass


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


@dataclass
class Answer:
    """One HTTP answer as it came off the wire."""

    status: int | None
    headers: dict[str, str]
    """Lower-case names; a repeated header's last value."""
    body: bytes
    complete: bool
    """False when the server was still sending at the deadline (a live feed)."""

    def json(self) -> object:
        return json.loads(self.body)


async def ask(
    port: int,
    raw: bytes,
    *,
    head: bool = False,
    timeout: float = 3.0,  # noqa: ASYNC109
    enough: Callable[[Answer], bool] | None = None,
) -> Answer:
    """Send one request (it should say ``Connection: close``) and parse the answer, skipping
    interim 1xx answers. ``enough`` ends the read early, once what came says so (a live feed
    that has sent what the test waits for)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = bytearray()
    complete = True
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(raw)
            await writer.drain()
        try:
            async with asyncio.timeout(timeout):
                while chunk := await reader.read(65536):
                    data += chunk
                    if enough is not None and enough(
                        parse_answer(bytes(data), head=head, complete=False)
                    ):
                        break
        except TimeoutError:
            complete = False
        except ConnectionError:
            pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return parse_answer(bytes(data), head=head, complete=complete)


def parse_answer(data: bytes, *, head: bool, complete: bool) -> Answer:
    while True:
        top, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            return Answer(status_of(data), {}, b"", False)
        lines = top.split(b"\r\n")
        status = status_of(lines[0])
        if status is not None and 100 <= status < 200:
            data = rest
            continue
        break
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if head or status in (204, 304):
        return Answer(status, headers, b"", complete)
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body, whole = _dechunk(rest)
        return Answer(status, headers, body, complete and whole)
    if "content-length" in headers and headers["content-length"].isdigit():
        size = int(headers["content-length"])
        return Answer(status, headers, rest[:size], complete and len(rest) >= size)
    return Answer(status, headers, rest, complete)


def _dechunk(data: bytes) -> tuple[bytes, bool]:
    body = bytearray()
    while True:
        size_line, sep, data = data.partition(b"\r\n")
        if not sep:
            return bytes(body), False
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            return bytes(body), False
        if size == 0:
            return bytes(body), True
        body += data[:size]
        if len(data) < size + 2:
            return bytes(body), False
        data = data[size + 2 :]
