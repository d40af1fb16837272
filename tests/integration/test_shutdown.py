"""SIGTERM to ``couchgate serve`` (its own process, on its embedded store) during a push and
during a live sync: it stops accepting, lets requests in flight finish, ends live feeds cleanly,
and exits well within ``shutdown_timeout``; after a restart on the same port both clients carry
on and every document is there."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.pouch import PouchSession, device_remote, run_pouch
from tests.served import SHUTDOWN_TIMEOUT_S, ServedDevice, Server


async def _doc_count(device: ServedDevice, app: str) -> int:
    headers = {"Authorization": f"Bearer {device.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(device.db_url(app) + "/", headers=headers) as r,
    ):
        return int((await r.json()).get("doc_count", 0)) if r.status == 200 else 0


@pytest.mark.slow
async def test_sigterm_during_a_push_loses_nothing_acknowledged(server: Server) -> None:
    device = await server.enroll()
    remote = device_remote(device, "notes")
    generate = {"count": 3000, "size": 200}
    first = asyncio.ensure_future(
        run_pouch("push", remote=remote, generate=generate, batch_size=50, check=False)
    )
    while (seen := await _doc_count(device, "notes")) < 300:
        assert not first.done(), first.result()
        await asyncio.sleep(0.02)
    took = await server.terminate()
    assert took < SHUTDOWN_TIMEOUT_S / 2
    await first  # failed or finished: either way the client stopped

    await server.start()  # same data, same port
    # Everything the store had acknowledged before the signal is still there.
    assert await _doc_count(device, "notes") >= seen
    resumed = await run_pouch("push", remote=remote, generate=generate, batch_size=500)
    assert resumed["result"]["replication"]["ok"]
    pulled = await run_pouch("pull", remote=remote, batch_size=500, timeout=120)
    ids = [d["_id"] for d in pulled["result"]["docs"]]
    assert ids == [f"doc-{i:04d}" for i in range(3000)]


@pytest.mark.slow
async def test_sigterm_ends_live_feeds_and_the_sync_resumes_after_restart(
    server: Server,
) -> None:
    device = await server.enroll()
    docs = [{"_id": f"before-{i:02d}", "n": i} for i in range(20)]
    async with await PouchSession.start(
        "sync-through-restart", remote=device_remote(device, "notes"), docs=docs, timeout_ms=45000
    ) as session:
        await session.wait_for("ready")
        took = await server.terminate()
        # A live feed left open (PouchDB's carry heartbeats, so they never end by themselves)
        # would hold shutdown until shutdown_timeout.
        assert took < SHUTDOWN_TIMEOUT_S / 2, f"shutdown took {took:.1f} s"
        await server.start()
        await session.send({"go": True})
        output = await session.result(timeout=120, check=False)
    assert output["ok"], output
    # PouchDB's HTTP adapter may leave a rejection unhandled while the server is away; the only
    # ones allowed are connections refused, and the sync carries on past them.
    assert all(e.get("code") == "ECONNREFUSED" for e in output["unhandled"]), output["unhandled"]
    out = output["result"]
    assert out["up"] and out["down"], (out, server.log.read_text()[-3000:])
    ids = {d["_id"] for d in out["docs"]}
    assert ids == {d["_id"] for d in docs} | {"after-restart", "from-server"}
    assert await _doc_count(device, "notes") == 22
