"""MIME multipart as CouchDB's replicator speaks it: ``multipart/related`` documents (JSON first,
then one part per attachment marked ``"follows": true``) and ``multipart/mixed`` for ``open_revs``.

Bodies are small enough to build and parse in memory here: attachments are stored as BLOBs, so
the engine holds each one whole anyway.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from ..errors import BadRequest
from ..reads import Rendered
from .params import strict_loads

Part = tuple[dict[str, str], bytes]


def new_boundary() -> str:
    return uuid.uuid4().hex


def _json(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def encode_related(rendered: Rendered, boundary: str) -> bytes:
    """A document and its attachment bodies as one ``multipart/related`` body."""
    out = [f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(), _json(rendered.doc)]
    for name, meta, data in rendered.parts:
        out.append(
            (
                f"\r\n--{boundary}\r\n"
                f'Content-Disposition: attachment; filename="{_quote(name)}"\r\n'
                f"Content-Type: {meta['content_type']}\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
        )
        out.append(data)
    out.append(f"\r\n--{boundary}--".encode())
    return b"".join(out)


def encode_mixed(results: list[tuple[str, Rendered | None]], boundary: str) -> bytes:
    """``open_revs`` as ``multipart/mixed``: JSON parts, or nested related parts with bodies."""
    out: list[bytes] = []
    for rev, rendered in results:
        out.append(f"--{boundary}\r\n".encode())
        if rendered is None:
            out.append(b'Content-Type: application/json; error="true"\r\n\r\n')
            out.append(_json({"missing": rev}))
        elif rendered.parts:
            inner = new_boundary()
            out.append(f'Content-Type: multipart/related; boundary="{inner}"\r\n\r\n'.encode())
            out.append(encode_related(rendered, inner))
        else:
            out.append(b"Content-Type: application/json\r\n\r\n")
            out.append(_json(rendered.doc))
        out.append(b"\r\n")
    out.append(f"--{boundary}--".encode())
    return b"".join(out)


def _quote(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def boundary_of(content_type_header: str) -> str:
    for param in content_type_header.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary" and value:
            return value.strip('"')
    raise BadRequest("multipart body without a boundary")


def parse(body: bytes, boundary: str) -> list[Part]:
    """Split a multipart body into ``(headers, content)`` parts (headers lower-cased)."""
    delimiter = b"--" + boundary.encode()
    start = body.find(delimiter)
    if start < 0:
        raise BadRequest("multipart body without its boundary")
    parts: list[Part] = []
    position = start + len(delimiter)
    while True:
        if body.startswith(b"--", position):
            return parts
        header_end = body.find(b"\r\n\r\n", position)
        if header_end < 0:
            raise BadRequest("malformed multipart body")
        headers = _headers(body[position:header_end])
        content_start = header_end + 4
        next_delimiter = body.find(b"\r\n" + delimiter, content_start)
        if next_delimiter < 0:
            raise BadRequest("multipart body is truncated")
        parts.append((headers, body[content_start:next_delimiter]))
        position = next_delimiter + 2 + len(delimiter)


def _headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.decode("latin-1").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return headers


def related_document(body: bytes, boundary: str) -> tuple[Any, dict[str, bytes]]:
    """A ``multipart/related`` PUT: the JSON document and its ``follows`` attachment bodies.

    Parts after the first are matched to ``follows`` attachments by their ``filename`` when the
    part names one, else in the order the JSON lists them (what CouchDB's replicator relies on).
    """
    parts = parse(body, boundary)
    if not parts:
        raise BadRequest("empty multipart body")
    try:
        doc = strict_loads(parts[0][1].decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("invalid UTF-8 JSON") from None
    atts = doc.get("_attachments") if isinstance(doc, dict) else None
    pending = [
        name
        for name, spec in (atts or {}).items()
        if isinstance(spec, dict) and spec.get("follows")
    ]
    bodies: dict[str, bytes] = {}
    for headers, content in parts[1:]:
        name = _filename(headers.get("content-disposition", ""))
        if name is None or name not in pending:
            if not pending:
                raise BadRequest("more attachment parts than follows entries")
            name = pending[0]
        pending.remove(name)
        bodies[name] = content
    return doc, bodies


def _filename(disposition: str) -> str | None:
    for param in disposition.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "filename":
            return value.strip('"').replace('\\"', '"').replace("\\\\", "\\")
    return None
