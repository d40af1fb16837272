"""A per-user limit that holds across replicas for things kept as records of their own (share
links, devices): written first, then counted, and taken back when past the limit.

Why it holds: each creation counts only after its own record is written, so of the creations
that pass, the one that counted last saw every other one's record (each was written before that
one counted). Never more than ``most`` pass; under a burst at the limit more may be refused than
strictly needed, and a retry then passes. A count taken first refuses the common case early.
(Apps are listed inside the account's record instead, whose revision holds their limit:
``IdentityStore.add_app``.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway.errors import Forbidden

T = TypeVar("T")


async def claim_within(
    most: int,
    count: Callable[[], Awaitable[int]],
    create: Callable[[], Awaitable[T]],
    undo: Callable[[T], Awaitable[object]],
    refusal: str,
) -> T:
    """``create()`` unless that makes more than ``most`` (0: no limit); 403 ``refusal`` if so."""
    if most and await count() >= most:
        raise Forbidden(refusal)
    made = await create()
    if most and await count() > most:
        await undo(made)
        raise Forbidden(refusal)
    return made
