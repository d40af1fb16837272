"""Logging set-up for ``couchgate serve``: text lines for a terminal, or one JSON object per
line for a log pipeline (``log_format = json``).

What goes into a line is decided where it is logged: route classes, statuses, sizes, exception
type names; never tokens, codes, email addresses, document ids or bodies. Code that is not ours
decides otherwise: aiohttp's server logs a malformed request with its raw request line or
header, tokens included. So every record of every logger passes :class:`Redactor` on its way
to the handler, which rewrites message, arguments, exception text and stack alike, and
:class:`ProtocolErrors` turns aiohttp's tracebacks for a client's malformed request (its
mistake, not ours) into one debug line naming the error's type.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from gateway.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
EXTRA_FIELDS = ("method", "route", "status", "bytes", "ms", "request_id")
# The start-up announcement of `couchgate serve` (gateway.cli.ready_fields).
READY_FIELDS = ("url", "admin_url", "demo_url", "next_step")
HIDDEN = "***"

# Each pattern finds a secret or something personal; what it matched becomes HIDDEN (a named
# group "keep" stays, so the line still says what was there).
_SECRETS = [
    # Device tokens wherever they appear, whole or cut short.
    re.compile(r"cg1\.[^\s'\"\\,;&)\]}]*"),
    # Credentials of any scheme, in a header line or a repr of one.
    re.compile(r"(?i)(?P<keep>\b(?:bearer|basic)\b[\s:=]+)[^\s'\"\\,;&)\]}]+"),
    re.compile(r"(?i)(?P<keep>authorization\b\W{0,4})[^\r\n'\"\\]+"),
    # Email addresses, and user:password@ in URLs.
    re.compile(r"[^\s@'\"<>()\[\]{}\\:/,;=]+@[^\s@'\"<>()\[\]{}\\/,;]+"),
    re.compile(r"(?P<keep>://)[^\s/@'\"]+@"),
    # Query strings: they carry tokens (?token=), codes and document ids.
    re.compile(r"(?P<keep>\?)[^\s'\"\\]+"),
    # Sign-in codes and other secrets in JSON or form bodies.
    re.compile(
        r"(?i)(?P<keep>[\"']?\b(?:code|challenge|token|password|secret|email)[\"']?\s*[:=]\s*)"
        r"(?:\"[^\"]*\"|'[^']*'|[^\s,&}]+)"
    ),
    # Enrollment and link codes: groups of four base32 characters.
    re.compile(r"\b[A-Z2-7]{4}(?:-[A-Z2-7]{4}){2,}\b"),
]


def redact(text: str) -> str:
    for pattern in _SECRETS:
        text = pattern.sub(_hide, text)
    return text


def _hide(match: re.Match[str]) -> str:
    keep = match.groupdict().get("keep")
    return (keep or "") + HIDDEN


class Redactor(logging.Filter):
    """A handler's filter that rewrites each record so no secret survives in it: the message
    with its arguments merged, exception text and stack, and every string passed as ``extra``."""

    def __init__(self) -> None:
        super().__init__()
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not take the line's secrets with it
            message = f"{record.msg!s} {record.args!s}"
        record.msg, record.args = redact(message), None
        if record.exc_info:
            record.exc_text = self._formatter.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name in EXTRA_FIELDS + READY_FIELDS:
            value = record.__dict__.get(name)
            if isinstance(value, str):
                record.__dict__[name] = redact(value)
        return True


class ProtocolErrors(logging.Filter):
    """On aiohttp's server logger: a request that is not HTTP (a bad request line, a header
    with a control character, one too long) is the client's error. aiohttp logs it at ERROR
    with a traceback and the raw bytes; here it becomes one DEBUG line with the error's type."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if _clients_fault(exc):
            assert exc is not None
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.msg, record.args = "malformed request refused: %s", (type(exc).__name__,)
            record.exc_info, record.exc_text = None, None
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def _clients_fault(exc: BaseException | None) -> bool:
    """Whether an exception is, or was caused by, a request aiohttp could not parse (also a
    body that does not decode as its Content-Encoding says, found while draining it)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, HttpProcessingError | RequestPayloadError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in EXTRA_FIELDS + READY_FIELDS:
            if name in record.__dict__:
                out[name] = record.__dict__[name]
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, default=str)


PROTOCOL_LOGGER = "aiohttp.server"


def make_handler(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """The one handler couchgate logs through: formatted as configured, redacted always."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(Redactor())
    return handler


def quiet_protocol_errors() -> None:
    """Install :class:`ProtocolErrors` on aiohttp's server logger (once)."""
    logger = logging.getLogger(PROTOCOL_LOGGER)
    if not any(isinstance(f, ProtocolErrors) for f in logger.filters):
        logger.addFilter(ProtocolErrors())


def setup_logging(settings: Settings) -> None:
    """Configure the root logger once, for the serving process (never at import time)."""
    root = logging.getLogger()
    root.handlers[:] = [make_handler(settings)]
    root.setLevel(settings.log_level.upper())
    quiet_protocol_errors()
