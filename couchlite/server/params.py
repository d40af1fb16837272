"""Query-string and body parsing with CouchDB's answers for bad input."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .. import revtree
from ..errors import BadRequest, bad_json, bad_rev


def option(query: Mapping[str, str], name: str) -> bool:
    """A document read's option: CouchDB takes "true" and ignores any other value."""
    return query.get(name) == "true"


def integer(query: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    value = query.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"Invalid value for integer: {name!r}") from None
    if number < 0:
        raise BadRequest(f"Invalid value for positive integer: {name!r}")
    return min(number, 2**63 - 1)


def json_param(query: Mapping[str, str], name: str) -> Any:
    value = query.get(name)
    if value is None:
        return None
    try:
        return strict_loads(value)
    except ValueError:
        raise bad_json() from None  # CouchDB's words for a query parameter too


def normalized_rev(rev: str) -> str:
    try:
        return revtree.normalize(rev)
    except ValueError:
        raise bad_rev() from None


def rev_param(query: Mapping[str, str], request: web.Request | None = None) -> str | None:
    """``?rev=`` (or an ``If-Match`` header, as CouchDB accepts), validated."""
    rev = query.get("rev")
    if rev is None and request is not None and (match := request.headers.get("If-Match")):
        rev = match.strip('"')
    return None if rev is None else normalized_rev(rev)


def rev_list(value: object, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise BadRequest(f"{name} must be a JSON array of revisions")
    return [normalized_rev(rev) for rev in value]


class TooDeep(ValueError):
    """JSON nested deeper than Python's parser goes."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


# A \u escape of a UTF-16 surrogate: only then can a decoded string hold a lone one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def strict_loads(text: str) -> Any:
    """JSON as CouchDB's parser takes it: no NaN or Infinity, no number beyond a double, no
    lone surrogate; ``ValueError`` otherwise, also for nesting deeper than Python's parser goes
    (CouchDB takes any depth: the one difference, named here)."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise TooDeep("JSON nested too deeply") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("lone surrogate") from None
        except RecursionError:
            raise TooDeep("JSON nested too deeply") from None
    return value


async def json_body(request: web.Request) -> Any:
    """The request body as JSON, or CouchDB's ``bad_request`` "invalid UTF-8 JSON"."""
    raw = await request.read()
    try:
        return strict_loads(raw.decode("utf-8"))
    except TooDeep:
        raise BadRequest("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise bad_json() from None


async def json_object(request: web.Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    return body


def dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(
    value: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=dumps(value), content_type="application/json", headers=headers
    )
