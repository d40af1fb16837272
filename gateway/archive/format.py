"""The archive format: newline-delimited JSON, one record per line (docs/export.md).

Why lines and not a tar: each line is a self-contained record that is written as soon as it is
read from the upstream and loaded as soon as it arrives, so neither side ever holds more than a
batch; a cut-off archive is told by its missing ``end`` line; and any JSON tool reads it. A tar
would need each member's size before its bytes, i.e. a buffered document.

    {"type": "manifest", "format": "couchgate-export", "version": 1, "user", "created", "apps"}
    {"type": "doc", "app": "notes", "doc": {"_id", "_rev", "_revisions", "e2e", "_attachments"}}
    ...
    {"type": "end", "docs": {"notes": 1234}}
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from gateway.errors import BadRequest, CouchError, TooLarge
from gateway.web.bodies import SLICE, parse_json

FORMAT = "couchgate-export"
VERSION = 1
MEDIA_TYPE = "application/x-ndjson"


def _line(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def manifest_line(uid: str, created: str, apps: list[dict[str, object]]) -> bytes:
    return _line(
        {
            "type": "manifest",
            "format": FORMAT,
            "version": VERSION,
            "user": uid,
            "created": created,
            "apps": apps,
        }
    )


def doc_line(app: str, doc: Mapping[str, Any]) -> bytes:
    return _line({"type": "doc", "app": app, "doc": doc})


def end_line(counts: Mapping[str, int]) -> bytes:
    return _line({"type": "end", "docs": dict(counts)})


def check_manifest(record: Mapping[str, Any]) -> None:
    if record.get("type") != "manifest" or record.get("format") != FORMAT:
        raise BadRequest("this is not a couchgate export (its first line is no manifest)")
    if record.get("version") != VERSION:
        raise BadRequest(f"this export has version {record.get('version')!r}; {VERSION} is read")


def parse_line(raw: bytes) -> dict[str, Any]:
    """One record, read by the same capped parser as a document body (orjson: strict as CouchDB
    reads JSON, never recursing, refused past its depth), so a line can only ever be a 400."""
    try:
        record = parse_json(raw)
    except CouchError as refusal:
        raise BadRequest(f"it is not UTF-8 JSON ({refusal.reason})") from None
    if not isinstance(record, dict):
        raise BadRequest("it is not a JSON object")
    return record


async def split_lines(chunks: AsyncIterator[bytes], max_line: int) -> AsyncIterator[bytes]:
    """The lines of a byte stream, each at most ``max_line`` bytes; only one line is held.

    The stream is cut in bytes' own (C) loops a window of :data:`SLICE` bytes at a time, and the
    event loop runs between windows: a body of millions of blank lines costs no Python step per
    line and holds no other request up."""
    pending = bytearray()
    async for chunk in chunks:
        for start in range(0, len(chunk), SLICE):
            window = chunk[start : start + SLICE]
            if b"\n" in window:
                head, *middle, tail = window.split(b"\n")
                pending += head
                _check_line(pending, max_line)
                if pending.strip():
                    yield bytes(pending)
                for line in middle:
                    if line.strip():
                        _check_line(line, max_line)
                        yield line
                pending = bytearray(tail)
            else:
                pending += window
            _check_line(pending, max_line)
            await asyncio.sleep(0)
    if pending.strip():
        yield bytes(pending)


def _check_line(line: bytes | bytearray, max_line: int) -> None:
    if len(line) > max_line:
        raise TooLarge(f"a line of the export is larger than {max_line} bytes")
