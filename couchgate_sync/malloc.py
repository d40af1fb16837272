"""File-sized buffers handed back to the system as soon as they are freed.

A file passes through the client whole, a few times over (sealed JSON, base64, bytes), in
buffers the size of the file. glibc serves a buffer over 128 KiB from its own mapping, but each
such buffer freed raises that threshold to its size (up to 32 MiB), after which file-sized
buffers come from the per-thread heaps, which keep their pages: the event loop and each of the
local store's threads end up holding a few files' worth for good. Setting the threshold
explicitly turns that adjustment off. Elsewhere (no glibc) this does nothing.
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
THRESHOLD = 128 * 1024  # glibc's default, kept fixed


def return_large_buffers() -> None:
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return
    mallopt(M_MMAP_THRESHOLD, THRESHOLD)
