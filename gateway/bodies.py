"""Reading request bodies that couchgate must look at, never past a size cap.

aiohttp's ``client_max_size`` does not apply to streamed bodies, so the cap is counted here.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.errors import BadRequest, TooLarge, UnsupportedMediaType

AUTH_BODY_LIMIT = 16 * 1024


async def read_capped(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"the request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """Strictly UTF-8, as CouchDB reads it: ``json.loads`` alone would also take UTF-16 and
    UTF-32, and a body the gateway and the upstream read differently could pass the checks."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("invalid UTF-8 JSON") from None


async def read_json_object(request: web.Request, limit: int = AUTH_BODY_LIMIT) -> dict[str, Any]:
    if request.content_type not in ("application/json", "application/octet-stream", ""):
        raise UnsupportedMediaType()
    body = parse_json(await read_capped(request, limit))
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def string_field(body: dict[str, Any], name: str, *, max_length: int = 256) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{name!r} must be a non-empty string")
    if len(value) > max_length:
        raise BadRequest(f"{name!r} is longer than {max_length} characters")
    return value.strip()
