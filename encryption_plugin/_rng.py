"""The single source of randomness, with a private seam for deterministic test vectors.

Everything that needs random bytes (keys, nonces, salts, attachment names) calls
:func:`random_bytes`. ``vectors/generate.py`` swaps the source with :func:`_replay` to produce
byte-exact vectors; nothing in the public API can reach it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import nacl.utils

__all__ = ["random_bytes"]

_source: Callable[[int], bytes] = nacl.utils.random


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the OS CSPRNG (libsodium's ``randombytes_buf``)."""
    return _source(n)


@contextmanager
def _replay(source: Callable[[int], bytes]) -> Iterator[None]:
    """Test-only: draw from ``source`` instead of the CSPRNG inside the ``with`` block."""
    global _source
    saved, _source = _source, source
    try:
        yield
    finally:
        _source = saved
