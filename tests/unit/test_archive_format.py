"""The export archive's pieces that need no server: lines split across any chunking, a line cap,
and attachment reads grouped by size."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.archive.exporter import ATTACHMENT_BATCH_BYTES, _by_size
from gateway.archive.format import split_lines
from gateway.errors import TooLarge


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 4096])
async def test_lines_come_out_whole_whatever_the_chunks(size: int) -> None:
    data = b'{"a":1}\n{"b":2}\n\n{"c":"x\\ny"}\n{"last":true}'
    lines = [line async for line in split_lines(_chunks(data, size), 100)]
    assert lines == [b'{"a":1}', b'{"b":2}', b'{"c":"x\\ny"}', b'{"last":true}']


async def test_a_line_past_the_cap_is_refused_before_it_is_held() -> None:
    data = b"x" * 50 + b"\n" + b"y" * 500
    with pytest.raises(TooLarge):
        _ = [line async for line in split_lines(_chunks(data, 16), 100)]


def test_attachment_reads_are_grouped_by_size() -> None:
    def doc(i: int, length: int) -> dict[str, object]:
        return {"_id": f"d{i}", "_rev": "1-a", "_attachments": {"x": {"length": length}}}

    half = ATTACHMENT_BATCH_BYTES // 2
    groups = _by_size([doc(1, half), doc(2, half), doc(3, 1), doc(4, 3 * half), doc(5, 1)])
    assert [[r["id"] for r in g] for g in groups] == [["d1", "d2"], ["d3"], ["d4"], ["d5"]]
