"""gateway.tasks.Background: work a request starts that must not stop when its client leaves."""

from __future__ import annotations

import asyncio

import pytest

from gateway.tasks import Background


async def test_finished_work_outlives_a_cancelled_caller() -> None:
    """A handler cancelled because its client hung up must not cut the work halfway."""
    background, started, gate, steps = Background(), asyncio.Event(), asyncio.Event(), []

    async def work() -> int:
        steps.append("created")
        started.set()
        await gate.wait()
        steps.append("secured")
        return 7

    caller = asyncio.ensure_future(background.finish(work(), "test work"))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    gate.set()
    await background.drain(within=5)
    assert steps == ["created", "secured"]


async def test_finish_returns_and_raises_what_the_work_does() -> None:
    background = Background()

    async def answer() -> str:
        return "ok"

    async def refuse() -> str:
        raise LookupError("no")

    assert await background.finish(answer(), "answer") == "ok"
    with pytest.raises(LookupError):
        await background.finish(refuse(), "refuse")
