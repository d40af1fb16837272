"""A ``multipart/related`` document PUT: its JSON document, and the framing of every part.

CouchDB's replicator sends a document with attachments as ``multipart/related``: the document as
JSON in the first part, each attachment's bytes in a part after it. The policy must see the
document, so the body is read as far as the end of the first part (under the size cap) and
checked first; the rest is then checked part by part (:class:`PartsChecker`) into a spool that
goes upstream, unchanged, only once the whole body has passed (:func:`spool_checked`).

The first part is found the way CouchDB's own parser finds it (``couch_httpd``'s
``parse_multipart_request``): anything before the first ``--<boundary>`` is a preamble, the part
headers run to the first blank line, and the part ends at the next ``CRLF--<boundary>``. Reading
it any other way would let a crafted body show the gateway one document and store another.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import AsyncIterator
from typing import Protocol

from couchlite.server.multipart import boundary_of
from gateway.errors import BadRequest, TooLarge

BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,\-./:=?]{1,70}$")  # RFC 2046's bchars, less space


class ByteStream(Protocol):
    """What a request body is read from (aiohttp's ``StreamReader``)."""

    async def readany(self) -> bytes: ...


def checked_boundary(content_type: str) -> bytes:
    """The ``boundary`` of a ``multipart/*`` Content-Type as the store and CouchDB read it
    (:func:`couchlite.server.multipart.boundary_of`), accepted only when it is unambiguous.

    Only RFC 2046's boundary characters, once: CouchDB splits the header on ``;`` without
    honouring quotes, so a boundary like ``"A;boundary=B"`` would mean one thing here and
    another upstream, and the document checked would not be the document stored.
    """
    try:
        boundary = boundary_of(content_type)
    except BadRequest:
        boundary = ""
    repeated = content_type.lower().count("boundary=") != 1
    if repeated or not BOUNDARY.match(boundary):
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
    def headers(self) -> bytes:
        """The first part's header block (after the delimiter line); only once :attr:`complete`."""
        if self._headers_from is None or self._body_start is None:
            raise ValueError("the first part is not complete yet")
        return bytes(self._buffer[self._headers_from : self._body_start])

    @property
    def body_end(self) -> int:
        """Where the first part's body ends in :attr:`head` (its closing delimiter starts)."""
        if self._body_end is None:
            raise ValueError("the first part is not complete yet")
        return self._body_end

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


HEADERS_LIMIT = 16 * 1024
_CRLF = b"\r\n"
_FILENAME = re.compile(r'attachment; filename="([^"\\]*)"')


class PartsChecker:
    """Let a multipart body past its first part through only as far as it is well framed.

    Every part after the document must be an attachment the document announces (``follows``),
    in the document's order, named in exactly the header CouchDB's replicator writes:
    ``Content-Disposition: attachment; filename="<name>"``. express-pouchdb's parser reads a part
    without a file name as JSON and dies of the parse error, and one that names another
    attachment would store bytes under a name the gateway never checked. A header block is held
    back until it is whole and checked, so what :meth:`feed` returns is always well framed.
    """

    def __init__(self, boundary: bytes, follows: list[str]) -> None:
        self._delimiter = _CRLF + b"--" + boundary
        self._expected = list(follows)
        self._buffer = bytearray()
        self._state = "body"

    def feed(self, chunk: bytes) -> bytes:
        """Take the next bytes; return those that may go upstream now. Raises BadRequest."""
        self._buffer += chunk
        released = bytearray()
        while True:
            step = self._step()
            if step is None:
                break
            released += step
        return bytes(released)

    def finish(self) -> None:
        """The body ended: refuse it unless it closed after the last announced attachment."""
        if self._state != "done":
            raise BadRequest("multipart request ended before its closing delimiter")

    def _take(self, size: int) -> bytes:
        taken = bytes(self._buffer[:size])
        del self._buffer[:size]
        return taken

    def _step(self) -> bytes | None:
        if self._state == "done":
            return self._take(len(self._buffer)) if self._buffer else None
        if self._state == "body":
            at = self._buffer.find(self._delimiter)
            if at < 0:
                keep = len(self._delimiter) - 1
                return self._take(len(self._buffer) - keep) if len(self._buffer) > keep else None
            self._state = "delimiter"
            return self._take(at + len(self._delimiter))
        if self._state == "delimiter":
            if len(self._buffer) < 2:
                return None
            if self._buffer[:2] == b"--":
                if self._expected:
                    raise BadRequest(
                        "multipart request ended before the attachments its document announces"
                    )
                self._state = "done"
                return b""
            if self._buffer[:2] != _CRLF:
                raise BadRequest("multipart delimiter not followed by CRLF")
            self._state = "headers"
            return b""
        end = self._buffer.find(_CRLF * 2)
        if end < 0:
            if len(self._buffer) > HEADERS_LIMIT:
                raise BadRequest("multipart part headers are too long")
            return None
        self._check_headers(bytes(self._buffer[2:end]))
        self._state = "body"
        return self._take(end + 4)

    def _check_headers(self, block: bytes) -> None:
        if not self._expected:
            raise BadRequest("multipart part that no attachment of the document announces")
        name = self._expected.pop(0)
        dispositions = []
        for line in block.split(_CRLF) if block else []:
            field, colon, value = line.partition(b":")
            if not colon or not field or field.strip() != field or line[:1] in (b" ", b"\t"):
                raise BadRequest("malformed multipart part header")
            if field.lower() == b"content-disposition":
                dispositions.append(value.strip())
        if len(dispositions) != 1:
            raise BadRequest(
                'each attachment part needs one Content-Disposition: attachment; filename="..."'
            )
        try:
            match = _FILENAME.fullmatch(dispositions[0].decode("utf-8"))
        except UnicodeDecodeError:
            match = None
        if match is None or match.group(1) != name or "%22" in name or "&#" in name:
            raise BadRequest(
                "attachment parts must follow in the document's order, each named "
                'Content-Disposition: attachment; filename="<its name>"'
            )


def follows_names(document: object) -> list[str]:
    """The attachments a multipart document says follow it, in its order (CouchDB's)."""
    attachments = document.get("_attachments") if isinstance(document, dict) else None
    if not isinstance(attachments, dict):
        return []
    return [n for n, a in attachments.items() if isinstance(a, dict) and a.get("follows") is True]


def check_first_part(part: FirstPart, boundary: bytes) -> None:
    """The document part as express-pouchdb and CouchDB both read it: the body opens with the
    delimiter (no preamble, no padding), and no file name makes the document an attachment."""
    if not part.head.startswith(b"--" + boundary + _CRLF):
        raise BadRequest("a multipart document body must open with its boundary delimiter")
    if b"filename" in part.headers.lower():
        raise BadRequest("the document part of a multipart request cannot name a file")


SPOOL_IN_MEMORY = 1024 * 1024
SPOOL_CHUNK = 256 * 1024


class Spool:
    """A whole multipart body, checked, waiting to go upstream: in memory up to
    :data:`SPOOL_IN_MEMORY`, then in a temporary file written and read off the event loop."""

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        self.size = 0

    async def write(self, data: bytes) -> None:
        if data:
            self.size += len(data)
            await asyncio.to_thread(self._file.write, data)

    async def chunks(self) -> AsyncIterator[bytes]:
        await asyncio.to_thread(self._file.seek, 0)
        while chunk := await asyncio.to_thread(self._file.read, SPOOL_CHUNK):
            yield chunk

    def close(self) -> None:
        self._file.close()


async def spool_checked(
    part: FirstPart, boundary: bytes, follows: list[str], rest: ByteStream, limit: int
) -> Spool:
    """The whole body, framed as :class:`PartsChecker` requires, before any of it goes upstream.

    Not streamed on purpose: express-pouchdb dies of any multipart upload that ends short (its
    parser's error is an unhandled rejection), so a body refused halfway, or one whose client
    leaves halfway, must never have started upstream. ``limit`` bounds it (413 past it), as the
    upstream's own request size limit would.
    """
    spool = Spool()
    try:
        checker = PartsChecker(boundary, follows)
        head = part.head
        await spool.write(head[: part.body_end])
        await spool.write(checker.feed(head[part.body_end :]))
        while chunk := await rest.readany():
            if spool.size + len(chunk) > limit:
                raise TooLarge(f"the multipart request is larger than {limit} bytes")
            await spool.write(checker.feed(chunk))
        checker.finish()
    except BaseException:
        spool.close()
        raise
    return spool
