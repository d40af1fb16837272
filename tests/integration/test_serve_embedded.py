"""``couchgate serve`` as people run it: its own process, no CouchDB anywhere, the embedded store
in a data directory. PouchDB replicates through it, and what it acknowledged survives kill -9."""

from __future__ import annotations

import dataclasses
import signal

from tests.pouch import device_remote, run_pouch
from tests.served import Server
from tests.upstreams import free_port


async def test_serve_with_no_upstream_replicates_and_survives_kill_9(server: Server) -> None:
    device = await server.enroll()  # `couchgate users add` from a second process
    docs = [{"_id": f"note-{i:04d}", "text": f"note {i}"} for i in range(300)]
    pushed = await run_pouch("push", remote=device_remote(device, "notes"), docs=docs)
    assert pushed["result"]["replication"]["docs_written"] == 300

    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    await server.proc.wait()
    again = dataclasses.replace(server, port=free_port(), proc=None)
    await again.start()
    try:
        moved = dataclasses.replace(device, base=again.url)
        pulled = await run_pouch("pull", remote=device_remote(moved, "notes"))
        assert sorted(d["_id"] for d in pulled["result"]["docs"]) == [d["_id"] for d in docs]
    finally:
        assert again.proc is not None
        again.proc.kill()
        await again.proc.wait()
