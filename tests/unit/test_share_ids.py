"""Share ids: unguessable, and never taken for an option on a command line."""

from __future__ import annotations

from gateway.shares.store import new_share_id


def test_a_share_id_never_begins_with_a_dash() -> None:
    """base64url has "-": one id in 64 began with it, and ``couchgate-sync unshare ID`` (as any
    argparse or getopt command) took it for an option. 2,000 ids: before, 1 - (63/64)^2000 of
    runs met one."""
    ids = {new_share_id() for _ in range(2000)}
    assert len(ids) == 2000  # still random
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
