"""The smaller promises of couchgate-sync, each on real ``couchgate-sync`` processes and real
folders through a real couchgate: what is ignored, where paths are read from, how a pipe closed
early and a failed join end, which folder a command finds, who may read the client's files, the
key shown again, and that the client's own files never become notes.

The client's side is what these test, so the embedded store stands for every upstream.
"""

from __future__ import annotations

import pytest

from tests.harness import GatewayHarness
from tests.sync.devices import FolderDevice

pytestmark = pytest.mark.parametrize("gateway_upstream", ["embedded"], indirect=True)


async def test_emacs_autosave_files_stay_on_their_device(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, b = devices
    a.write("plan.md", "plan\n")
    a.write("#plan.md#", "autosave\n")
    a.write("deep/#notes.md#", "autosave\n")
    a.write("deep/a#b.md", "a real note with a hash in its name\n")
    await a.sync()
    await b.sync()
    assert b.files() == {
        "plan.md": b"plan\n",
        "deep/a#b.md": b"a real note with a hash in its name\n",
    }
