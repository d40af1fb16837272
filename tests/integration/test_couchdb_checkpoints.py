"""CouchDB's own replicator, both ways through an encrypted app: its checkpoints are exactly what
the ``_local`` guard lets through (issue 9, finding 4), and its multipart pushes are framed as the
parts check expects (finding 1). Needs a real CouchDB (``COUCHDB_URL``), skipped elsewhere; the
PouchDB twins run everywhere (``test_e2e_encryption.py``, ``test_local_docs.py``)."""

from __future__ import annotations

import base64
import os

import pytest

import encryption_plugin as ep
from tests.harness import start_gateway, stop_gateway
from tests.upstreams import Upstream

pytestmark = pytest.mark.couchdb


async def test_couchdbs_replicator_checkpoints_pass_in_an_encrypted_app(upstream: Upstream) -> None:
    if not upstream.is_couchdb:
        pytest.skip("needs Apache CouchDB (COUCHDB_URL, or Docker) as the replicator")
    gateway = await start_gateway(upstream, plaintext_apps="")
    try:
        device = await gateway.new_device()
        assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
        source = f"cg-checkpoint-source-{os.getpid()}"
        await gateway.peek("DELETE", f"/{source}")
        assert (await gateway.peek("PUT", f"/{source}"))[0] == 201
        keyring = ep.Keyring.generate("notes")
        blob = base64.b64encode(os.urandom(50_000)).decode()
        docs = [
            ep.seal_doc(
                {
                    "_id": f"d{i}",
                    "n": i,
                    "_attachments": {"a.bin": {"content_type": "x/y", "data": blob}},
                },
                keyring,
            )
            for i in range(5)
        ]
        assert (await gateway.peek("POST", f"/{source}/_bulk_docs", {"docs": docs}))[0] == 201
        admin = f"{upstream.url.replace('://', f'://{upstream.user}:{upstream.password}@')}"
        remote = {"url": f"{gateway.url}/db/notes", "headers": device.headers}
        for body in (
            {"source": f"{admin}/{source}", "target": remote},
            {"source": remote, "target": f"{admin}/{source}-back", "create_target": True},
        ):
            status, result = await gateway.peek("POST", "/_replicate", body)
            assert status == 200 and result["ok"], result
            assert result["history"][0]["docs_written"] == 5
            assert result["history"][0]["doc_write_failures"] == 0
        status, checkpoints = await gateway.peek(
            "GET", f"/{gateway.upstream_db(device, 'notes')}/_local_docs"
        )
        assert status == 200 and len(checkpoints["rows"]) == 2
        await gateway.peek("DELETE", f"/{source}")
        await gateway.peek("DELETE", f"/{source}-back")
    finally:
        await stop_gateway(gateway)
