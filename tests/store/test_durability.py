"""A write answered 201 survives ``kill -9``: SIGKILL the store mid-push, restart, find them all."""

from __future__ import annotations

import asyncio
import base64
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.store.helpers import start_store

pytestmark = pytest.mark.slow


def _auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    store = start_store(tmp_path / "data")
    acked: dict[str, str] = {}
    enough = asyncio.Event()

    def note_progress() -> None:
        if len(acked) >= 1500:
            enough.set()

    try:
        async with aiohttp.ClientSession(headers=_auth(store.user, store.password)) as session:
            async with session.put(store.url + "/durable") as resp:
                assert resp.status == 201

            async def writer(worker: int) -> None:
                for n in range(100_000):
                    doc_id = f"w{worker}-{n}"
                    try:
                        if n % 5 == 0:  # some batches too
                            docs = [{"_id": f"{doc_id}-b{i}", "i": i} for i in range(10)]
                            async with session.post(
                                store.url + "/durable/_bulk_docs", json={"docs": docs}
                            ) as resp:
                                rows = await resp.json()
                                if resp.status == 201:
                                    acked.update({r["id"]: r["rev"] for r in rows if "rev" in r})
                            note_progress()
                            continue
                        async with session.put(
                            f"{store.url}/durable/{doc_id}", json={"n": n, "pad": "x" * 200}
                        ) as resp:
                            body = await resp.json()
                            if resp.status == 201:
                                acked[doc_id] = body["rev"]
                            note_progress()
                    except (aiohttp.ClientError, ConnectionError):
                        return

            tasks = [asyncio.create_task(writer(w)) for w in range(8)]
            await asyncio.wait_for(enough.wait(), timeout=60)
            store.proc.send_signal(signal.SIGKILL)  # mid-push: requests are in flight
            await asyncio.gather(*tasks)
    finally:
        store.proc.kill()
        store.proc.wait()

    assert len(acked) >= 1500
    restarted = start_store(tmp_path / "data", store.user, store.password)
    try:
        async with (
            aiohttp.ClientSession(headers=_auth(store.user, store.password)) as session,
            session.post(
                restarted.url + "/durable/_all_docs", json={"keys": sorted(acked)}
            ) as resp,
        ):
            rows = (await resp.json())["rows"]
    finally:
        restarted.proc.kill()
        restarted.proc.wait()
    found = {row["id"]: row["value"]["rev"] for row in rows if "value" in row}
    lost = [doc_id for doc_id, rev in acked.items() if found.get(doc_id) != rev]
    assert lost == []
