"""Reading request bodies that couchgate must look at, never past a size cap or a depth.

aiohttp's ``client_max_size`` does not apply to streamed bodies, so the cap is counted here.
JSON is read by orjson: it refuses what CouchDB refuses (NaN, numbers past a double, lone
surrogates, a byte-order mark, anything after the value) and never recurses, so no body can
raise a ``RecursionError`` in the gateway.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from gateway.errors import BadRequest, TooLarge, UnsupportedMediaType

AUTH_BODY_LIMIT = 16 * 1024
# CouchDB itself takes any depth; the gateway re-encodes some bodies with the standard library
# (bounded by Python's recursion limit, about 1,000), so it stops well short of that. No client
# of the replication protocol nests documents anywhere near this deep.
MAX_JSON_DEPTH = 512
INVALID_JSON = "invalid UTF-8 JSON"  # CouchDB's words for every body it cannot parse


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


async def read_checked_json(
    request: web.Request, limit: int, *, empty_ok: bool
) -> tuple[bytes, Any]:
    """A JSON body couchgate forwards without looking inside (``_revs_diff``, ``_bulk_get``,
    ``_all_docs``, ``_changes``): read whole, up to ``limit``, and parsed once, so what is not
    JSON as CouchDB reads it, or nests too deep, is refused here and never reaches (or crashes)
    the upstream. Refused as CouchDB 3.5 refuses them: another Content-Type (415), and an
    empty body where one is needed (400; ``_ensure_full_commit`` takes none). Returns the bytes
    to forward unchanged and what they parse to (None for an empty body)."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType()
    raw = await read_capped(request, limit)
    if not raw.strip():
        if empty_ok:
            return raw, None
        raise BadRequest("Missing request body")
    return raw, parse_json(raw)


def parse_json(raw: bytes) -> Any:
    """Strictly UTF-8 and strict JSON, as CouchDB reads it: a body the gateway and the upstream
    read differently could pass the checks. Deeper than :data:`MAX_JSON_DEPTH`: 400."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise _too_deep() from None
        raise BadRequest(INVALID_JSON) from None
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and json_depth(value) > MAX_JSON_DEPTH:
        raise _too_deep()
    return value


def json_depth(value: Any) -> int:
    """How deep containers nest in a parsed value (a scalar: 0), level by level, not by
    recursion."""
    depth = 0
    level = [value] if isinstance(value, dict | list) else []
    while level:
        depth += 1
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, dict | list)
        ]
    return depth


def _too_deep() -> BadRequest:
    return BadRequest(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")


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
