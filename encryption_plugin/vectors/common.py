"""What every part of the vector generator shares: the fixed roots and app ids, the seeded
stream every random draw comes from, and keyrings made of the fixed roots."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from encryption_plugin import _rng
from encryption_plugin.keys import Keyring

OUT = Path(__file__).with_name("ep1.json")
ROOTS = {"A": bytes(range(32)), "B": bytes(range(32, 64))}
APP = "notes"
OTHER_APP = "todo.example"


class Stream:
    """Deterministic byte source that remembers what it handed out."""

    def __init__(self, label: str) -> None:
        self._label = label.encode()
        self._counter = 0
        self.draws: list[str] = []

    def __call__(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.blake2b(
                self._counter.to_bytes(8, "little"), key=b"ep1-vectors", person=self._label[:16]
            ).digest()
            self._counter += 1
        self.draws.append(out[:n].hex())
        return out[:n]


def replayed(label: str, fn: Callable[[], Any]) -> tuple[Any, list[str]]:
    stream = Stream(label)
    with _rng._replay(stream):
        return fn(), stream.draws


def keyring(app_id: str, *names: str) -> Keyring:
    ring = Keyring(app_id, ROOTS[names[0]])
    for name in names[1:]:
        ring.add(ROOTS[name])
    return ring
