"""Request-wide concerns: error shaping (outermost), request ids, CORS, and the access log.

couchgate answers CORS itself, for configured origins only, with credentials and never a
wildcard. The access log names route classes, never raw paths: document ids stay out of logs.
"""

from __future__ import annotations

import logging
import re
import uuid

import aiohttp
from aiohttp import hdrs, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from gateway import keys
from gateway.errors import UNREADABLE_BODY, UpstreamUnavailable, answered, json_error

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ALLOWED_METHODS = "GET, HEAD, POST, PUT, DELETE"
EXPOSED_HEADERS = "Content-Type, ETag, X-Request-ID, X-Couch-Request-ID, X-Couch-Update-NewRev"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place a failure becomes a CouchDB-shaped ``{"error", "reason"}`` answer."""
    try:
        return await answered(request, handler)
    except web.HTTPException:
        raise  # a redirect (answered re-raises below 400): aiohttp sends it as it is
    except RequestPayloadError:
        # The client's body broke off or does not decode as its Content-Encoding says.
        return json_error(400, "bad_request", UNREADABLE_BODY)
    except aiohttp.ClientError as exc:
        log.warning("upstream call failed: %s", type(exc).__name__)
        return UpstreamUnavailable().response()
    except TimeoutError:
        # An upstream call past its timeout (the admin calls' 30 s): the database did not
        # answer, which is an outage to the client, not a fault of the request.
        log.warning("upstream call timed out")
        return UpstreamUnavailable().response()
    except Exception:
        # The outermost handler, and the only broad one: log the bug, answer 500, leak nothing.
        log.exception("unhandled error in request %s", request.get(keys.REQUEST_ID))
        return json_error(500, "unknown_error", "internal error")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-ID", "")
    request[keys.REQUEST_ID] = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    return await handler(request)


@web.middleware
async def route_class_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Label the request with its route (a handler may refine the label): from here on the
    route is known, and the access log and metrics read the label, never ``match_info``,
    which a request aiohttp refused before routing does not have."""
    resource = request.match_info.route.resource
    if resource is not None:
        request[keys.ROUTE_CLASS] = resource.canonical
    return await handler(request)


def _allowed_origin(request: web.Request) -> str | None:
    origin = request.headers.get(hdrs.ORIGIN)
    if origin and origin in request.app[keys.SETTINGS].cors_origins:
        return origin
    return None


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer preflights here; actual responses get their CORS headers in :func:`on_prepare`."""
    if request.method == "OPTIONS" and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
        origin = _allowed_origin(request)
        if origin is None:
            return json_error(403, "forbidden", "origin not allowed")
        requested = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS, "")
        return web.Response(
            status=204,
            headers={
                hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: origin,
                hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS: "true",
                hdrs.ACCESS_CONTROL_ALLOW_METHODS: ALLOWED_METHODS,
                hdrs.ACCESS_CONTROL_ALLOW_HEADERS: requested
                or "Authorization, Content-Type, Accept",
                hdrs.ACCESS_CONTROL_MAX_AGE: "600",
                hdrs.VARY: "Origin",
            },
        )
    return await handler(request)


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Headers every response gets, streamed ones included."""
    response.headers[hdrs.SERVER] = "couchgate"
    request_id = request.get(keys.REQUEST_ID)
    if request_id:
        response.headers["X-Request-ID"] = request_id
    origin = _allowed_origin(request)
    if origin is not None:
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
        response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSED_HEADERS
        response.headers.add(hdrs.VARY, "Origin")


def route_class(request: web.BaseRequest) -> str:
    label = request.get(keys.ROUTE_CLASS)
    return label if isinstance(label, str) else "unmatched"


class AccessLogger(AbstractAccessLogger):
    """One line per request: method, route class, status, bytes, time, request id."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        fields = {
            "method": request.method,
            "route": route_class(request),
            "status": response.status,
            "bytes": response.body_length,
            "ms": round(time * 1000, 1),
            "request_id": request.get(keys.REQUEST_ID, "-"),
        }
        self.logger.info(
            "%(method)s %(route)s %(status)s %(bytes)s %(ms).1fms rid=%(request_id)s",
            fields,
            extra=fields,
        )
