"""Open live feeds, by device, so revoking a device ends its feeds at once.

A feed is ended by setting its event: the proxy then finishes the response cleanly (the client
sees the feed end, reconnects, and is refused), which is kinder to clients than a reset.

At shutdown every feed is ended the same way, and so is any feed opened after that (its request
was already in flight): clients see a whole answer, reconnect, and reach another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterator


class Stop(asyncio.Event):
    """A feed's "stop" event, which can also call back when set: a feed held by couchgate
    (``changes_hub``) waits on one future of its own rather than a task per event."""

    def __init__(self) -> None:
        super().__init__()
        self._callbacks: set[Callable[[], None]] = set()

    def set(self) -> None:
        super().set()
        for callback in list(self._callbacks):
            callback()

    def on_set(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` when the event is set (at once if it is); returns its remover."""
        if self.is_set():
            callback()
            return lambda: None
        self._callbacks.add(callback)
        return lambda: self._callbacks.discard(callback)


class FeedRegistry:
    def __init__(self) -> None:
        self._by_device: defaultdict[str, set[Stop]] = defaultdict(set)
        self._closed = False

    @contextlib.contextmanager
    def open(self, device_key: str) -> Iterator[Stop]:
        """Register one live feed for the life of the ``with`` block; the event means "stop"."""
        stop = Stop()
        if self._closed:
            stop.set()
        self._by_device[device_key].add(stop)
        try:
            yield stop
        finally:
            feeds = self._by_device.get(device_key)
            if feeds is not None:
                feeds.discard(stop)
                if not feeds:
                    del self._by_device[device_key]

    def close_device(self, device_key: str) -> int:
        """End every open feed of one device; returns how many there were."""
        feeds = self._by_device.get(device_key, set())
        for stop in feeds:
            stop.set()
        return len(feeds)

    def close_all(self) -> int:
        """End every open feed, and from now on every feed as soon as it opens (shutdown)."""
        self._closed = True
        return sum(self.close_device(key) for key in list(self._by_device))

    def open_for(self, device_key: str) -> int:
        """How many live feeds one device holds open here."""
        return len(self._by_device.get(device_key, ()))

    def __len__(self) -> int:
        return sum(len(feeds) for feeds in self._by_device.values())
