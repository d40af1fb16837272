"""The replication pipeline (``replicate._Pipeline``): one request's work on its way while the
next is made ready, and a page's checkpoint taken only once the work of the page is done, so a
crash never leaves a checkpoint ahead of what was written. Its checkpoint's two sides are two
real local stores."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from couchgate_sync import replicate
from couchgate_sync.localdb import LocalDb
from couchgate_sync.remote import RemoteError

Saved = tuple[replicate._Pipeline, replicate.Checkpoint]


@pytest.fixture
async def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Saved]:
    monkeypatch.setenv("COUCHGATE_SYNC_HOME", str(tmp_path))
    sides = [LocalDb(tmp_path / "data" / name / "local.sqlite3") for name in ("a", "b")]
    for side in sides:
        await side.open()
    cp = replicate.Checkpoint("_local/pipeline", 0, "session")
    try:
        yield replicate._Pipeline(replicate._Saver(cp, *sides)), cp
    finally:
        for side in sides:
            await side.close()


async def test_a_page_is_checkpointed_once_its_work_is_done(pipeline: Saved) -> None:
    line, cp = pipeline
    release = asyncio.Event()

    async def written(count: int) -> int:
        await release.wait()
        return count

    await line.start(written(3))
    line.page_done(10)
    await asyncio.sleep(0.01)
    assert cp.since == 0  # its documents are still on their way
    release.set()
    await line.drain()
    assert (cp.since, line.done) == (10, 3)


async def test_work_waits_for_the_work_before_it(pipeline: Saved) -> None:
    line, _ = pipeline
    order: list[str] = []

    async def step(name: str) -> int:
        order.append(f"{name} starts")
        await asyncio.sleep(0.01)
        order.append(f"{name} ends")
        return 1

    await line.start(step("first"))
    await line.run(step("second"))
    await line.start(step("third"))
    await line.drain()
    assert order == [f"{n} {e}" for n in ("first", "second", "third") for e in ("starts", "ends")]
    assert line.done == 3


async def test_a_failure_on_its_way_is_raised_next_and_checkpoints_nothing(
    pipeline: Saved,
) -> None:
    line, cp = pipeline

    async def refused() -> int:
        raise RemoteError("the server refused 1 document(s)")

    async def never() -> int:
        return 1

    await line.start(refused())
    line.page_done(10)
    after = never()
    with pytest.raises(RemoteError):
        await line.start(after)
    assert inspect.getcoroutinestate(after) == inspect.CORO_CLOSED  # closed, never run
    assert cp.since == 0


async def test_a_held_page_holds_every_page_after_it(pipeline: Saved) -> None:
    line, cp = pipeline
    line.page_done(5)
    line.page_done(10, held=lambda: True)  # refusals: this page must be sent again
    line.page_done(15)
    await line.drain()
    assert cp.since == 5 and line.held


async def test_close_stops_the_work_on_its_way(pipeline: Saved) -> None:
    line, cp = pipeline
    started, stopped = asyncio.Event(), asyncio.Event()

    async def endless() -> int:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()
        return 1

    await line.start(endless())
    line.page_done(10)
    await started.wait()
    await line.close()
    assert stopped.is_set() and cp.since == 0


@pytest.mark.parametrize(
    "doc",
    [
        {"_id": "n", "e2e": "ep1.x", "_revisions": {"start": 1, "ids": ["a"]}},
        {"_id": "n", "v": 2**70},
    ],
    ids=["sealed", "a 71-bit integer"],
)
def test_a_pushed_document_is_json_that_reads_back_the_same(doc: dict[str, object]) -> None:
    assert json.loads(replicate._encoded(doc)) == doc
