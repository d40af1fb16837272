"""Which chunks a survey keeps, on a real local store (the embedded engine), in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from couchgate_sync import chunk_gc, chunks, notes, versions
from couchgate_sync.cycle import FolderSync
from encryption_plugin import Keyring


async def test_conflicting_leaves_and_kept_versions_keep_their_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring = Keyring.generate("notes")
    (tmp_path / "folder").mkdir()
    folder_sync = FolderSync(tmp_path / "folder", tmp_path / "state", keyring, "laptop")
    context = folder_sync.context
    await folder_sync.open()
    try:
        contents = {name: name.encode() * 1000 for name in ("winner", "loser", "kept", "unused")}
        ids = {name: chunks.chunk_id(data, keyring) for name, data in contents.items()}
        writes: list[tuple[dict[str, Any], str | None]] = [
            (chunks.seal_chunk(ids[n], d, keyring), None) for n, d in contents.items()
        ]

        def lister(doc_id: str, name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
            return notes.seal_note(
                doc_id,
                "big.bin",
                contents[name],
                mtime_ms=1,
                origin="x",
                created=None,
                keyring=keyring,
                chunks=[ids[name]],
                extra=extra,
            )

        writes += [(lister("file", "winner"), None), (lister("file", "loser"), None)]  # conflict
        kept = {"kind": versions.KIND, "of": "file", "rev": "1-a", "kept_until": 2**62}
        writes.append((lister("version", "kept", kept), None))
        await context.local.write_children(writes)
        tree = await context.local.tree("file")
        assert tree is not None and len(tree.live_leaves) == 2

        assert await chunk_gc.collect(context) == 0  # a first cycle only starts the clock
        hour = chunk_gc.EVERY_MS // 1000
        assert await chunk_gc.collect(context) == 0  # and not an hour has passed
        monkeypatch.setenv("COUCHGATE_SYNC_CLOCK_OFFSET_S", str(hour))
        assert await chunk_gc.collect(context) == 0  # first sight of "unused": only noted
        monkeypatch.setenv("COUCHGATE_SYNC_CLOCK_OFFSET_S", str(hour + chunk_gc.GRACE_MS // 1000))
        assert await chunk_gc.collect(context) == 1
        for name, cid in ids.items():
            found = await context.local.tree(cid)
            assert found is not None and found.deleted == (name == "unused"), name
    finally:
        await folder_sync.close()
