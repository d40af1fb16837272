"""Logging set-up for ``couchgate serve``: text lines for a terminal, or one JSON object per
line for a log pipeline (``log_format = json``).

What goes into a line is decided where it is logged: route classes, statuses, sizes, exception
type names; never tokens, codes, email addresses, document ids or bodies. The JSON form adds
the structured fields a caller passed as ``extra`` (the access log's method, route, status, ...).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from gateway.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
EXTRA_FIELDS = ("method", "route", "status", "bytes", "ms", "request_id")
# The start-up announcement of `couchgate serve` (gateway.cli.ready_fields).
READY_FIELDS = ("url", "admin_url", "demo_url", "next_step")


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
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(settings: Settings) -> None:
    """Configure the root logger once, for the serving process (never at import time)."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
