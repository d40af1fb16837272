"""Chunk garbage collection: chunk documents nothing needs any more are deleted, everywhere.

A chunk is *needed* while a live leaf of any document lists it: a file's current content, a
conflicting leaf not yet settled, or a kept version (versions.py; expired versions are pruned
first). Each device, at most once an hour (``EVERY_MS``; the first an hour after its first
cycle) and only right after a pull (so its view is the server's), surveys its local store and
deletes the chunks it has seen unneeded for ``GRACE_MS`` (a tombstone, which replication takes
to the server and every other device).

The race this is built around: device B uploads the chunks of a new file and, a moment or a
crash later, the file document that lists them; device A, in between, sees chunks nobody lists.
Hence the rules (docs/notes-format.md, "Collecting chunks"):

1. *Grace.* A chunk is collected only when this device found it unneeded, at the same
   revision, in every survey for at least ``GRACE_MS`` (a day). A device that uploaded chunks
   has all that time to upload the file that lists them; a chunk revived or rewritten
   meanwhile starts its day again.
2. *Healing.* Should a chunk still be collected while needed (B was offline for more than a day
   between the two uploads, or B reused an existing chunk that A was collecting just then), any
   device that finds a live leaf listing a deleted chunk and still holds the chunk's content
   (the local store keeps the revision under the tombstone; B always does, it wrote or read
   the chunk) writes the content back as a new revision under the tombstone: a live leaf, so
   the chunk is live again on every replica. A device re-cutting the same content does the same
   (``Contents.seal_file`` rewrites a chunk whose document is deleted).

The survey opens every document's leaves without their attachments (small bodies), off the event
loop; 10,000 notes of 2 KB take about 2 s on a 2-core machine, once an hour.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from couchlite import revtree
from encryption_plugin import CryptoError, Keyring, open_doc

from . import chunks, versions
from .device import DeviceContext
from .state import Meta

log = logging.getLogger("couchgate_sync")
EVERY_MS = 3_600_000
GRACE_MS = versions.DAY_MS
PAGE = 500


@dataclass
class Survey:
    """What the local store holds: live chunks (id -> their live leaves), deleted chunks'
    ids, and every chunk id a live leaf lists."""

    live: dict[str, list[str]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    needed: set[str] = field(default_factory=set)


def due(context: DeviceContext, now_ms: int) -> bool:
    """Whether a survey is due; a device's first cycle only starts the clock, so its first
    survey is an hour later. A first sync is when a survey costs most (every document is new)
    and finds least: a chunk is collected only after a day of surveys anyway."""
    last = context.state.meta(Meta.CHUNKS_SURVEYED_AT, "")
    if not last:
        context.state.set_meta(Meta.CHUNKS_SURVEYED_AT, str(now_ms))
        return False
    return now_ms - int(last) >= EVERY_MS


async def collect(context: DeviceContext) -> int:
    """One survey and collection, when one is due; how many documents it wrote."""
    now = versions.now_ms()
    if not await asyncio.to_thread(due, context, now):
        return 0
    found = await survey(context)
    written = 0
    for cid in sorted(found.needed & found.deleted):
        written += 1 if await revive(context, cid) else 0
    seen = json.loads(await asyncio.to_thread(context.state.meta, Meta.UNNEEDED_CHUNKS, "{}"))
    unneeded: dict[str, list[Any]] = {}
    doomed: list[tuple[dict[str, Any], str | None]] = []
    for cid, leaves in found.live.items():
        if cid in found.needed:
            continue
        rev = max(leaves, key=revtree.rev_order)
        since = seen.get(cid)
        if isinstance(since, list) and since[0] == rev:
            if now - int(since[1]) >= GRACE_MS:
                doomed += [({"_id": cid, "_deleted": True}, leaf) for leaf in leaves]
                continue
            unneeded[cid] = since
        else:
            unneeded[cid] = [rev, now]
    if doomed:
        await context.local.write_children(doomed)
        log.info("collected %d unused chunk(s)", len({d["_id"] for d, _ in doomed}))
    await asyncio.to_thread(context.state.set_meta, Meta.UNNEEDED_CHUNKS, json.dumps(unneeded))
    await asyncio.to_thread(context.state.set_meta, Meta.CHUNKS_SURVEYED_AT, str(now))
    return written + len(doomed)


async def survey(context: DeviceContext) -> Survey:
    found = Survey()
    since = 0
    while True:
        page = await context.local.changes(since, PAGE)
        ids = [str(row["id"]) for row in page.rows]
        leaves = await context.local.leaves(ids)
        await asyncio.to_thread(_classify, leaves, context.keyring, found)
        if not page.rows or page.last_seq == since:
            return found
        since = page.last_seq


def _classify(leaves: list[tuple[str, dict[str, Any]]], keyring: Keyring, found: Survey) -> None:
    deleted: set[str] = set()
    for doc_id, doc in leaves:
        if doc.get("_deleted"):
            deleted.add(doc_id)
            continue
        try:
            plain = open_doc(doc, keyring)
        except CryptoError:
            continue  # under another key: it cannot list this key's chunks
        listed = plain.get("chunks")
        if plain.get("kind") == chunks.KIND:
            found.live.setdefault(doc_id, []).append(str(doc["_rev"]))
        elif isinstance(listed, list):
            found.needed.update(c for c in listed if isinstance(c, str))
    # A document is deleted when no leaf of it is live.
    found.deleted |= deleted - found.live.keys()


async def revive(context: DeviceContext, cid: str) -> bool:
    """Write a deleted chunk's content back under its tombstone, from the revision below it;
    False when this device does not hold that content."""
    tree = await context.local.tree(cid)
    if tree is None or not tree.deleted:
        return False
    for rev in revtree.ancestry(tree.tree, tree.winner)[1:]:
        stored = await context.local.revision(cid, rev)
        if stored is None or stored.get("_deleted"):
            continue
        try:
            content = await asyncio.to_thread(chunks.open_chunk, stored, context.keyring)
        except CryptoError:
            continue
        if content is None or chunks.chunk_id(content, context.keyring) != cid:
            continue
        sealed = await asyncio.to_thread(chunks.seal_chunk, cid, content, context.keyring)
        await context.local.write_child(sealed, tree.winner)
        log.info("restored a chunk still in use that had been collected")
        return True
    return False


async def heal(context: DeviceContext, doc_ids: set[str]) -> int:
    """Revive the deleted chunks that the winners of ``doc_ids`` list (documents that could
    not be written to the folder for want of a chunk); how many were revived."""
    revived = 0
    for doc_id in sorted(doc_ids):
        tree = await context.local.tree(doc_id)
        stored = await context.local.revision(doc_id, tree.winner) if tree else None
        if stored is None or stored.get("_deleted"):
            continue
        try:
            plain = await asyncio.to_thread(open_doc, stored, context.keyring)
        except CryptoError:
            continue
        listed = plain.get("chunks")
        for cid in listed if isinstance(listed, list) else []:
            if isinstance(cid, str) and await revive(context, cid):
                revived += 1
    return revived
