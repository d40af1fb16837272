"""Work that must not depend on a request's client: fire-and-forget work (sending a code, noting
when a device was seen) that must not delay a response, and work that must not stop halfway when
the client hangs up. Kept referenced so it is not garbage-collected, and awaited at shutdown."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        task = self._track(coro)
        task.add_done_callback(functools.partial(_report, what))

    async def finish(self, coro: Coroutine[Any, Any, T], what: str) -> T:
        """Run ``coro`` to its end even if the request awaiting it is cancelled (its client hung
        up, and the runner cancels handlers): a database created but not yet made its user's
        would otherwise stay closed to them. Its answer or error goes to the caller; once the
        caller is gone, an error is logged like spawned work's."""
        task = self._track(coro)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(functools.partial(_report, what))
            raise

    def _track(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, within: float) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=within)
        for task in pending:
            task.cancel()


def _report(what: str, task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("background %s failed: %s", what, type(task.exception()).__name__)
