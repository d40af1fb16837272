"""Reading request bodies that couchgate must look at, never past a size cap or a depth.

aiohttp's ``client_max_size`` does not apply to streamed bodies, so the cap is counted here.
JSON is read by orjson: it refuses what CouchDB refuses (NaN, numbers past a double, lone
surrogates, a byte-order mark, anything after the value) and never recurses, so no body can
raise a ``RecursionError`` in the gateway.

The server runs with aiohttp's ``auto_decompress`` off (gateway/app.py): a compressed body is
inflated here or nowhere, by :func:`read_stream`, only where a route names the encodings it takes
(the import takes gzip), in slices of :data:`SLICE` bytes with the event loop free between them,
and counted after inflating. Everywhere else a ``Content-Encoding`` is refused with 415 as
CouchDB refuses what it cannot read.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Collection
from typing import Any

import orjson
from aiohttp import hdrs, web

from gateway.errors import UNREADABLE_BODY, BadRequest, TooLarge, UnsupportedMediaType

AUTH_BODY_LIMIT = 16 * 1024
# CouchDB itself takes any depth; the gateway re-encodes some bodies with the standard library
# (bounded by Python's recursion limit, about 1,000), so it stops well short of that. No client
# of the replication protocol nests documents anywhere near this deep.
MAX_JSON_DEPTH = 512
INVALID_JSON = "invalid UTF-8 JSON"  # CouchDB's words for every body it cannot parse


SLICE = 64 * 1024
"""The most a body reader hands on (or inflates) between two turns of the event loop."""


def content_coding(request: web.Request, accepted: Collection[str] = ()) -> str | None:
    """The body's one content coding if the route takes it (``None``: as sent). Any other is
    refused in CouchDB's words; so is a stack of codings (``gzip, gzip``: a bomb in a bomb)."""
    codings = [
        coding
        for value in request.headers.getall(hdrs.CONTENT_ENCODING, [])
        for coding in (c.strip() for c in value.split(","))
        if coding.lower() not in ("", "identity")
    ]
    if not codings:
        return None
    if len(codings) == 1 and codings[0].lower() in accepted:
        return codings[0].lower()
    raise UnsupportedMediaType(f"{codings[0][:40]} is not a supported content encoding.")


async def read_stream(
    request: web.Request, limit: int, *, encodings: Collection[str] = ()
) -> AsyncIterator[bytes]:
    """The body as it arrives, or inflated if its coding is one of ``encodings`` (then in slices
    of at most :data:`SLICE` bytes, the event loop free between them: 32 KB of gzip inflate to
    32 MiB, which would otherwise be one blocking call). Past ``limit`` bytes, counted after
    inflating, it stops with 413."""
    coding = content_coding(request, encodings)
    if coding is None and request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"the request body is larger than {limit} bytes")
    inflater = _inflater(coding)
    size = 0
    async for chunk in request.content.iter_any():
        if inflater is None:
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"the request body is larger than {limit} bytes")
            yield chunk
            continue
        rest = memoryview(chunk)
        while True:
            piece, rest, inflater = _inflate(inflater, rest, coding)
            size += len(piece)
            if size > limit:
                raise TooLarge(f"the request body is larger than {limit} bytes")
            if piece:
                yield piece
            await asyncio.sleep(0)
            if not rest and len(piece) < SLICE:
                break  # a full slice may leave output behind even with no input left
    if inflater is not None and not inflater.eof:
        raise BadRequest(UNREADABLE_BODY)


def _inflater(coding: str | None) -> Any:
    """A fresh zlib inflater for gzip (each member of a multi-member file) or deflate."""
    if coding is None:
        return None
    return zlib.decompressobj(16 + zlib.MAX_WBITS if coding == "gzip" else zlib.MAX_WBITS)


def _inflate(inflater: Any, data: memoryview, coding: str | None) -> tuple[bytes, memoryview, Any]:
    """At most :data:`SLICE` inflated bytes from ``data``; the input not yet used; the
    inflater to carry on with (a new one where a gzip member ended and another begins)."""
    try:
        if inflater.eof:
            inflater = _inflater(coding)
        piece = inflater.decompress(data, SLICE)
    except zlib.error:
        raise BadRequest(UNREADABLE_BODY) from None
    rest = inflater.unconsumed_tail if not inflater.eof else inflater.unused_data
    return piece, memoryview(rest), inflater


async def read_capped(request: web.Request, limit: int) -> bytes:
    """A whole body of at most ``limit`` bytes, sent as it is (no content coding)."""
    return b"".join([chunk async for chunk in read_stream(request, limit)])


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
