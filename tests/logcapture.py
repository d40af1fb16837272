"""Everything couchgate logs during a test, at DEBUG, through the handler ``couchgate serve``
installs (formatting, redaction and aiohttp's protocol errors quieted, as in production)."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

from gateway.config import Settings
from gateway.ops.logs import PROTOCOL_LOGGER, ProtocolErrors, make_handler, quiet_protocol_errors


@contextlib.contextmanager
def captured_logs(settings: Settings) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = make_handler(settings, stream)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    quiet_protocol_errors()
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        server = logging.getLogger(PROTOCOL_LOGGER)
        for f in [f for f in server.filters if isinstance(f, ProtocolErrors)]:
            server.removeFilter(f)
