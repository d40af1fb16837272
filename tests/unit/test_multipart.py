"""Finding the JSON document at the head of a multipart/related body, without reading past it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import BadRequest, TooLarge
from gateway.replication.multipart import FirstPart, checked_boundary, read_first_part, replay

BOUNDARY = b"e2b1f0c2a9d84f7bbd2cd4b1a3e5c6f7"
DOC = json.dumps({"_id": "a", "_rev": "2-x", "e2e": "ep1.x.y.z", "_attachments": {}}).encode()
ATTACHMENT = bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n"


def couch_body(doc: bytes = DOC, attachment: bytes = ATTACHMENT, *, preamble: bytes = b"") -> bytes:
    """What CouchDB's replicator sends (``couch_doc:doc_to_multi_part_stream``)."""
    return (
        preamble
        + b"--"
        + BOUNDARY
        + b"\r\ncontent-type: application/json\r\n\r\n"
        + doc
        + b"\r\n--"
        + BOUNDARY
        + b"\r\n\r\n"
        + attachment
        + b"\r\n--"
        + BOUNDARY
        + b"--"
    )


class Chunks:
    """A request body arriving in the given pieces; counts how many were read."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.pieces: list[bytes] = []
        at = 0
        for size in sizes:
            self.pieces.append(data[at : at + size])
            at += size
        self.pieces.append(data[at:])
        self.pieces = [p for p in self.pieces if p]
        self.read = 0

    async def readany(self) -> bytes:
        if self.read >= len(self.pieces):
            return b""
        self.read += 1
        return self.pieces[self.read - 1]


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ('multipart/related; boundary="abc"', b"abc"),
        ("multipart/related;boundary=abc", b"abc"),
        ('Multipart/Related; type="application/json"; boundary="a.b:c"', b"a.b:c"),
        ('multipart/related; boundary="b0d1e2f3a4"', b"b0d1e2f3a4"),
    ],
)
def test_checked_boundary(content_type: str, expected: bytes) -> None:
    assert checked_boundary(content_type) == expected


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/related",
        'multipart/related; boundary=""',
        "multipart/related; boundary=" + "x" * 71,
        # CouchDB splits on ";" without honouring quotes: it would take "A" here.
        'multipart/related; boundary="A;boundary=B"',
        "multipart/related; boundary=A; boundary=B",
        'multipart/related; boundary="a b"',
        'multipart/related; boundary="ä"',
    ],
)
def test_checked_boundary_refuses_a_missing_or_bad_boundary(content_type: str) -> None:
    with pytest.raises(BadRequest):
        checked_boundary(content_type)


def test_the_document_is_the_first_part_in_one_piece() -> None:
    part = FirstPart(BOUNDARY)
    assert part.feed(couch_body())
    assert part.document == DOC


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_any_split_into_chunks_finds_the_same_document(sizes: list[int]) -> None:
    body = couch_body()
    part = FirstPart(BOUNDARY)
    for piece in Chunks(body, sizes).pieces:
        if part.feed(piece):
            break
    assert part.complete
    assert part.document == DOC
    assert body.startswith(part.head)


def test_byte_by_byte_stops_right_after_the_closing_delimiter() -> None:
    body = couch_body()
    part = FirstPart(BOUNDARY)
    fed = 0
    while not part.feed(body[fed : fed + 1]):
        fed += 1
    end = body.index(b"\r\n--" + BOUNDARY, len(b"--" + BOUNDARY)) + len(b"\r\n--" + BOUNDARY)
    assert fed + 1 == end
    assert part.document == DOC


def test_a_preamble_is_skipped_as_couchdb_does() -> None:
    part = FirstPart(BOUNDARY)
    assert part.feed(couch_body(preamble=b"ignored preamble\r\n"))
    assert part.document == DOC


def test_a_part_without_headers() -> None:
    body = b"--" + BOUNDARY + b"\r\n\r\n" + DOC + b"\r\n--" + BOUNDARY + b"--"
    part = FirstPart(BOUNDARY)
    assert part.feed(body)
    assert part.document == DOC


def test_an_empty_document_part() -> None:
    body = b"--" + BOUNDARY + b"\r\n\r\n\r\n--" + BOUNDARY + b"--"
    part = FirstPart(BOUNDARY)
    assert part.feed(body)
    assert part.document == b""


def test_incomplete_bodies_wait_for_more() -> None:
    body = couch_body()
    cut = body.index(DOC) + len(DOC) + 3  # inside the closing delimiter
    part = FirstPart(BOUNDARY)
    assert not part.feed(body[:cut])
    with pytest.raises(ValueError):
        _ = part.document
    assert part.feed(body[cut:])
    assert part.document == DOC


async def test_read_first_part_reads_no_further_than_the_document() -> None:
    body = couch_body()
    doc_end = body.index(DOC) + len(DOC) + 40
    stream = Chunks(body, [10, doc_end - 10, 1000, 1000])
    part = await read_first_part(stream, BOUNDARY, limit=10_000)
    assert part.document == DOC
    assert stream.read == 2
    replayed = b"".join([chunk async for chunk in replay(part.head, stream)])
    assert replayed == body


async def test_read_first_part_enforces_the_cap() -> None:
    big = json.dumps({"_id": "a", "x": "y" * 5000}).encode()
    with pytest.raises(TooLarge):
        await read_first_part(Chunks(couch_body(big), [100] * 100), BOUNDARY, limit=2048)


async def test_a_body_that_ends_before_the_document_is_a_bad_request() -> None:
    body = couch_body()
    truncated = body[: body.index(DOC) + 5]
    with pytest.raises(BadRequest):
        await read_first_part(Chunks(truncated, [7]), BOUNDARY, limit=10_000)


async def test_no_boundary_at_all_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        await read_first_part(Chunks(DOC, [8]), BOUNDARY, limit=10_000)


async def test_replay_with_nothing_read_yet_is_just_the_stream() -> None:
    assert [chunk async for chunk in replay(b"", Chunks(b"abcdef", [2]))] == [b"ab", b"cdef"]


def _framed(names: list[str]) -> bytes:
    out = b""
    for name in names:
        out += b"\r\n--" + BOUNDARY + b"\r\n"
        out += f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'.encode()
        out += b"\r\n--" + b"x" * 40 + b" data of " + name.encode()
    return out + b"\r\n--" + BOUNDARY + b"--\r\nepilogue"


@given(st.lists(st.integers(min_value=1, max_value=50), max_size=40))
def test_the_parts_checker_passes_every_byte_of_a_good_body_however_it_is_cut(
    sizes: list[int],
) -> None:
    from gateway.replication.multipart import PartsChecker

    data = _framed(["a", "b"])
    checker = PartsChecker(BOUNDARY, ["a", "b"])
    out = b""
    at = 0
    for size in [*sizes, len(data)]:
        out += checker.feed(data[at : at + size])
        at += size
    checker.finish()
    assert out == data


@pytest.mark.parametrize(
    ("names", "follows"), [(["b"], ["a"]), (["a", "a"], ["a"]), ([], ["a"]), (["a"], [])]
)
def test_the_parts_checker_holds_back_what_it_refuses(names: list[str], follows: list[str]) -> None:
    from gateway.replication.multipart import PartsChecker

    data = _framed(names)
    checker = PartsChecker(BOUNDARY, follows)
    with pytest.raises(BadRequest):
        checker.feed(data)
        checker.finish()
