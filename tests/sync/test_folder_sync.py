"""Two folder devices, real ``couchgate-sync`` processes, through a real couchgate (embedded
store, pouchdb-server, and CouchDB when present) that requires encryption."""

from __future__ import annotations

from tests.harness import GatewayHarness
from tests.sync.devices import FolderDevice


async def test_create_edit_rename_delete_propagate(
    devices: tuple[FolderDevice, FolderDevice],
) -> None:
    a, b = devices
    a.write("hello.md", "# Hello\n\nfirst words\n")
    a.write("Daily/2026-12-01.md", "today\n")
    await a.sync()
    await b.sync()
    assert b.files() == a.files()

    (a.folder / "hello.md").write_text("# Hello\n\nsecond words\n")
    (a.folder / "Daily/2026-12-01.md").rename(a.folder / "Daily/renamed.md")
    await a.sync()
    await b.sync()
    assert b.files() == {
        "hello.md": b"# Hello\n\nsecond words\n",
        "Daily/renamed.md": b"today\n",
    }

    (b.folder / "hello.md").unlink()
    await b.sync()
    await a.sync()
    assert a.files() == {"Daily/renamed.md": b"today\n"}
