"""The JSON document at the head of a ``multipart/related`` document PUT, and nothing more.

CouchDB's replicator sends a document with attachments as ``multipart/related``: the document as
JSON in the first part, each attachment's bytes in a part after it. The policy must see the
document; the attachments (up to gigabytes) must stream. So the body is read only as far as the
end of the first part (under the size cap), checked, and then those bytes and the rest of the
body go upstream unchanged.

The first part is found the way CouchDB's own parser finds it (``couch_httpd``'s
``parse_multipart_request``): anything before the first ``--<boundary>`` is a preamble, the part
headers run to the first blank line, and the part ends at the next ``CRLF--<boundary>``. Reading
it any other way would let a crafted body show the gateway one document and store another.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.message import Message
from typing import Protocol

from gateway.errors import BadRequest, TooLarge

BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,\-./:=?]{1,70}$")  # RFC 2046's bchars, less space


class ByteStream(Protocol):
    """What a request body is read from (aiohttp's ``StreamReader``)."""

    async def readany(self) -> bytes: ...


def boundary_of(content_type: str) -> bytes:
    """The ``boundary`` parameter of a ``multipart/*`` Content-Type, quoted or not.

    Only RFC 2046's boundary characters, once: CouchDB splits the header on ``;`` without
    honouring quotes, so a boundary like ``"A;boundary=B"`` would mean one thing here and
    another upstream, and the document checked would not be the document stored.
    """
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    repeated = content_type.lower().count("boundary=") != 1
    if repeated or not isinstance(boundary, str) or not BOUNDARY.match(boundary):
        raise BadRequest("multipart request without a valid boundary")
    return boundary.encode("ascii")


class FirstPart:
    """Feed a multipart body chunk by chunk until its first part is complete.

    Each search resumes where the last one stopped (less a needle's length, for a delimiter
    split across chunks), so a document arriving in many small chunks is scanned once.
    """

    def __init__(self, boundary: bytes) -> None:
        self._open = b"--" + boundary
        self._close = b"\r\n--" + boundary
        self._buffer = bytearray()
        self._scanned = 0
        self._body_start: int | None = None
        self._headers_from: int | None = None
        self._body_end: int | None = None

    @property
    def complete(self) -> bool:
        return self._body_end is not None

    @property
    def head(self) -> bytes:
        """Every byte fed so far: what must go upstream before the rest of the body."""
        return bytes(self._buffer)

    @property
    def document(self) -> bytes:
        """The first part's body (the JSON document); only once :attr:`complete`."""
        if self._body_start is None or self._body_end is None:
            raise ValueError("the first part is not complete yet")
        return bytes(self._buffer[self._body_start : self._body_end])

    def feed(self, chunk: bytes) -> bool:
        """Add the next bytes of the body; True once the first part is complete."""
        if self.complete:
            raise ValueError("the first part is already complete")
        self._buffer += chunk
        while not self.complete and self._step():
            pass
        return self.complete

    def _find(self, needle: bytes, start: int) -> int:
        """Where ``needle`` starts at or after ``start``, or -1; remembers how far it looked."""
        at = self._buffer.find(needle, max(start, self._scanned))
        self._scanned = at if at >= 0 else max(start, len(self._buffer) - len(needle) + 1)
        return at

    def _step(self) -> bool:
        """Advance one stage (delimiter, headers, body) if the buffer allows; False to wait."""
        if self._headers_from is None:
            at = self._find(self._open, 0)
            if at < 0:
                return False
            self._headers_from = self._scanned = at + len(self._open)
            return True
        if self._body_start is None:
            at = self._find(b"\r\n\r\n", self._headers_from)
            if at < 0:
                return False
            self._body_start = self._scanned = at + 4
            return True
        at = self._find(self._close, self._body_start)
        if at < 0:
            return False
        self._body_end = at
        return True


async def read_first_part(stream: ByteStream, boundary: bytes, limit: int) -> FirstPart:
    """Read ``stream`` until its first part is complete, at most ``limit`` bytes.

    Raises :class:`TooLarge` past the limit and :class:`BadRequest` if the body ends first.
    """
    part = FirstPart(boundary)
    size = 0
    while True:
        chunk = await stream.readany()
        if not chunk:
            raise BadRequest("multipart request ended before its document")
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the document part is larger than {limit} bytes")
        if part.feed(chunk):
            return part


async def replay(head: bytes, rest: ByteStream) -> AsyncIterator[bytes]:
    """``head`` (already read), then the remainder of ``rest`` as it arrives."""
    if head:
        yield head
    while chunk := await rest.readany():
        yield chunk
