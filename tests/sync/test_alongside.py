"""``cycle.alongside``: a push follows a running scan, an apply a running pull. What matters on
a bad day: the work always ends as it would alone (a scan records every edit even when the
server goes away under the push beside it), and no failure is lost."""

from __future__ import annotations

import asyncio

import pytest

from couchgate_sync import cycle


async def _steps(n: int, done: list[int], fail_at: int | None = None) -> int:
    for step in range(n):
        await asyncio.sleep(cycle.FOLLOW_EVERY_S / 2)
        if step == fail_at:
            raise OSError("the disk refused")
        done.append(step)
    return n


async def test_the_follower_runs_while_the_work_goes_and_the_work_s_result_is_returned() -> None:
    done: list[int] = []
    seen: list[int] = []

    async def follow() -> None:
        seen.append(len(done))

    assert await cycle.alongside(_steps(8, done), follow) == 8
    assert done == list(range(8))
    assert len(seen) >= 2 and seen == sorted(seen) and seen[-1] < 8  # it followed progress


async def test_work_that_ends_at_once_runs_alone() -> None:
    calls: list[int] = []

    async def follow() -> None:
        calls.append(1)

    assert await cycle.alongside(_steps(0, []), follow) == 0
    assert calls == []


async def test_a_failing_follower_lets_the_work_finish_then_raises() -> None:
    done: list[int] = []

    async def follow() -> None:
        raise ConnectionRefusedError("the server went away")

    with pytest.raises(ConnectionRefusedError):
        await cycle.alongside(_steps(6, done), follow)
    assert done == list(range(6))  # every step recorded all the same


async def test_the_work_s_own_failure_comes_first() -> None:
    async def follow() -> None:
        raise ConnectionRefusedError("the server went away")

    with pytest.raises(OSError, match="the disk refused"):
        await cycle.alongside(_steps(6, [], fail_at=3), follow)


async def test_cancelling_it_cancels_the_work() -> None:
    done: list[int] = []

    async def follow() -> None:
        pass

    task = asyncio.ensure_future(cycle.alongside(_steps(100, done), follow))
    await asyncio.sleep(cycle.FOLLOW_EVERY_S * 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    reached = len(done)
    await asyncio.sleep(cycle.FOLLOW_EVERY_S * 2)
    assert len(done) == reached < 100  # the work stopped with it
