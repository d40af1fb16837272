"""Empty folders, synced as sealed documents of their own.

A folder that holds a synced file needs no document: the file's path brings it into being on
every device. A directory that has had nothing synced in it (no file, no directory; ignored
entries do not count) gets one, ``{"kind": "folder", "path", "created", "device"}``, and keeps
it until the directory is removed (or ignored), even while it holds files: a device that saw
the folder gain a file could otherwise delete the document another device had just made by
emptying it, before that device's deletion of the file arrived, and the folder would then
vanish everywhere. The id is the keyed id of the path with a trailing ``/``
(``derivations.folder_id("Projects/new")``, keyed ``Projects/new/``): as a file's, it tells the
server nothing, and a folder never shares a document with a file of the same name.

Applying one: a live document makes the directory (``mkdir -p``); a deleted one removes the
directory only when it is empty (anything put in it meanwhile stays, and syncs as usual).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from encryption_plugin import Keyring, derivations, seal_doc

from . import folder, notes
from .device import DeviceContext
from .ignore import Ignore
from .state import DirRow, State

KIND = notes.FOLDER


def folder_id(path: str, keyring: Keyring) -> str:
    return derivations.folder_id(notes.normalize(path), keyring)


def seal_folder(doc_id: str, path: str, device: str, keyring: Keyring) -> dict[str, Any]:
    return seal_doc(
        {
            "_id": doc_id,
            "kind": KIND,
            "path": notes.normalize(path),
            "created": notes.iso(int(time.time() * 1000)),
            "device": device,
        },
        keyring,
    )


async def record(
    context: DeviceContext, listing: folder.Listing, ignore: Ignore, device_name: str
) -> int:
    """Scan side: new empty folders get a document (made by ``device_name``), rows whose folder
    is gone (or now ignored) lose theirs; how many changed."""
    rows = await asyncio.to_thread(context.state.dirs)
    count = 0
    for path in sorted(listing.empty_dirs - rows.keys()):
        doc_id = folder_id(path, context.keyring)
        tree = await context.local.tree(doc_id)
        if tree is not None and not tree.deleted:
            rev = tree.winner  # made on another device too, or recorded before a crash
        else:
            sealed = seal_folder(doc_id, path, device_name, context.keyring)
            rev = await context.local.write_child(sealed, tree.winner if tree else None)
            count += 1
        await asyncio.to_thread(context.state.put_dir, DirRow(path, doc_id, rev))
    for path, row in sorted(rows.items()):
        if path in listing.dirs and not ignore.matches(path + "/"):
            continue
        tree = await context.local.tree(row.doc_id)
        if tree is not None and not tree.deleted:
            await context.local.write_child({"_id": row.doc_id, "_deleted": True}, tree.winner)
            count += 1
        await asyncio.to_thread(context.state.drop_dir, path)
    return count


async def apply_live(
    context: DeviceContext, doc_id: str, rev: str, path: str, ignore: Ignore, blocked: set[str]
) -> bool:
    """Make the folder of a live folder document; whether anything was done. A document a
    file stands in the way of is added to ``blocked`` (apply tries it again)."""
    row = await asyncio.to_thread(context.state.dir_by_doc, doc_id)
    if (row is not None and row.rev == rev) or ignore.matches(path + "/"):
        return False
    try:
        await asyncio.to_thread(folder.make_dir, context.root, path)
    except folder.UnsafePath:
        return False
    except OSError:
        # A file of that name is in the way (a file here, a folder elsewhere): the device with
        # the folder moves the file aside (see apply.Applier._file); until then this waits.
        blocked.add(doc_id)
        return False
    await asyncio.to_thread(context.state.put_dir, DirRow(path, doc_id, rev))
    return row is None


async def apply_deleted(context: DeviceContext, doc_id: str) -> bool:
    """Remove the folder of a deleted folder document if it is still empty; whether the
    document was a folder this device had."""
    row = await asyncio.to_thread(context.state.dir_by_doc, doc_id)
    if row is None:
        return False
    await asyncio.to_thread(context.state.drop_dir, row.path)
    keep = await kept(context.state)
    await asyncio.to_thread(folder.remove_dir, context.root, row.path, keep)
    return True


async def kept(state: State) -> frozenset[str]:
    """The synced empty folders, which removing a file must not take with it."""
    return frozenset(await asyncio.to_thread(state.dirs))
