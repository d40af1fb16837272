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

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from gateway.errors import BadRequest, TooLarge

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


def parse_line(raw: bytes, number: int) -> dict[str, Any]:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(f"line {number} of the export is not UTF-8 JSON") from None
    if not isinstance(record, dict):
        raise BadRequest(f"line {number} of the export is not a JSON object")
    return record


async def split_lines(chunks: AsyncIterator[bytes], max_line: int) -> AsyncIterator[bytes]:
    """The lines of a byte stream, each at most ``max_line`` bytes; only one line is held."""
    pending = bytearray()
    async for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            pending += chunk[start:end]
            if len(pending) > max_line:
                raise TooLarge(f"a line of the export is larger than {max_line} bytes")
            if pending.strip():
                yield bytes(pending)
            pending.clear()
            start = end + 1
        pending += chunk[start:]
        if len(pending) > max_line:
            raise TooLarge(f"a line of the export is larger than {max_line} bytes")
    if pending.strip():
        yield bytes(pending)
