"""A pull of documents larger than a pull batch's cap completes, and the client's memory for it
stays bounded: the ``_bulk_get`` answer is parsed as it arrives and written to the local store a
batch at a time, never held whole (a hundred such documents would be gigabytes).

The figure is the ``couchgate-sync sync`` process's peak resident set (``ru_maxrss``, read by a
parent that runs nothing else), against the same device's peak for a pull of one small note.
Run on CouchDB (the reference) and the embedded store: the answer's shape is the upstream's.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sys
from urllib.parse import quote

import pytest

from couchgate_sync import notes
from couchgate_sync.replicate import PULL_BATCH_BYTES
from encryption_plugin import Keyring
from tests.harness import Device, GatewayHarness
from tests.sync.devices import FolderDevice, credentials_of, joined_user

DOCS = 8
DOC_BYTES = 2 * PULL_BATCH_BYTES  # each document alone is over the cap
# Handling one document takes about seven times its size at its peak (sealed JSON, base64 and
# bytes, while it is pulled and again while its file is written: measured 121 MB above the small
# pull's peak for 8 of them, 119 MB for 2). Since the folder is written while the pull goes on,
# one document being pulled and one being written can be in memory at once: 165 MB for the 8.
# Holding the whole answer, as the old client did (raw, parsed, then decoded), took 525 MB for
# the 8; opening a page's large files together, 378 MB.
BOUND_KIB = 12 * DOC_BYTES // 1024

# Runs the command given after it and prints its peak RSS (KiB) as stderr's last line.
RSS_PROBE = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
    "sys.exit(code)"
)


async def _sync_peak_kib(device: FolderDevice) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RSS_PROBE,
        sys.executable,
        "-m",
        "couchgate_sync",
        "sync",
        str(device.folder),
        env=device.env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 600)
    assert proc.returncode == 0, err.decode()[-2000:]
    return int(err.decode().strip().splitlines()[-1])


async def _write_as_another_client(
    gateway: GatewayHarness, device: FolderDevice, path: str, data: bytes
) -> None:
    """A sealed file document with its content as one attachment, as a PouchDB app (or a
    folder device with other chunking) may write one: not in chunks, whatever its size."""
    creds = credentials_of(device)
    keyring = Keyring.from_export(creds["key"], app_id="notes")
    doc_id = notes.doc_id_for(path, keyring)
    sealed = await asyncio.to_thread(
        notes.seal_note,
        doc_id,
        path,
        data,
        mtime_ms=1_764_579_600_000,
        origin="another",
        created=None,
        keyring=keyring,
    )
    as_device = Device(creds["token"], joined_user(device), "", gateway.url)
    status, answer = await gateway.call(
        "PUT",
        f"/db/notes/{quote(doc_id, safe='')}",
        device=as_device,
        data=io.BytesIO(json.dumps(sealed).encode()),
        headers={"Content-Type": "application/json"},
    )
    assert status == 201, answer


@pytest.mark.parametrize("gateway_upstream", ["couchdb", "embedded"], indirect=True)
async def test_a_pull_of_documents_over_the_batch_cap_completes_in_bounded_memory(
    sealed_gateway: GatewayHarness, devices: tuple[FolderDevice, FolderDevice]
) -> None:
    a, b = devices
    a.write("small.md", "a small note\n")
    await a.sync()
    small = await _sync_peak_kib(b)
    assert b.files() == {"small.md": b"a small note\n"}

    digests = {}
    for n in range(DOCS):
        data = os.urandom(DOC_BYTES)
        digests[f"big/{n}.bin"] = hashlib.sha256(data).hexdigest()
        await _write_as_another_client(sealed_gateway, a, f"big/{n}.bin", data)
        del data
    big = await _sync_peak_kib(b)

    files = b.files()
    assert {p: hashlib.sha256(files[p]).hexdigest() for p in digests} == digests
    print(f"peak RSS: small pull {small} KiB, {DOCS} x {DOC_BYTES >> 20} MiB pull {big} KiB")
    assert big - small < BOUND_KIB, (small, big)
