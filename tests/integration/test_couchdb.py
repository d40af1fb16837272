"""What only a real Apache CouchDB can show: the ``jwt`` upstream mode with CouchDB enforcing
``_security``, and CouchDB's own replicator replicating through couchgate.

They run where ``COUCHDB_URL`` is set or a Docker engine answers (``tests/upstreams.py``), and are
skipped elsewhere. Their twins run everywhere: the same replication flows with the real PouchDB
client (``test_pouchdb_replication.py``) and the same isolation checks (``test_isolation.py``)
against pouchdb-server and the embedded store; the JWT claims and headers are unit-tested
(``tests/unit/test_upstream_auth.py``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.backend import member_name
from gateway.upstream_auth import jwt_header
from tests.harness import GatewayHarness, start_gateway, stop_gateway
from tests.upstreams import Upstream

pytestmark = pytest.mark.couchdb

# How CouchDB reaches a gateway the tests start: loopback for a CouchDB on this host
# (COUCHDB_URL), the Docker host's address for a container.
GATEWAY_HOST_SEEN_BY_COUCHDB = os.environ.get("COUCHGATE_TEST_GATEWAY_HOST")


@pytest.fixture
def couchdb(upstream: Upstream) -> Upstream:
    if not upstream.is_couchdb or not upstream.jwt_secret:
        pytest.skip(
            "needs Apache CouchDB with JWT (COUCHDB_URL + COUCHDB_JWT_SECRET, or Docker); "
            "the twins run against pouchdb-server and the embedded store"
        )
    return upstream


@pytest.fixture
async def jwt_gateway(couchdb: Upstream) -> AsyncIterator[GatewayHarness]:
    host = "0.0.0.0" if GATEWAY_HOST_SEEN_BY_COUCHDB else "127.0.0.1"
    gw = await start_gateway(
        couchdb, upstream_auth="jwt", upstream_jwt_secret=couchdb.jwt_secret, host_override=host
    )
    try:
        yield gw
    finally:
        await stop_gateway(gw)


def _as_member(couchdb: Upstream, uid: str) -> dict[str, str]:
    assert couchdb.jwt_secret is not None
    return {
        "Authorization": jwt_header(couchdb.jwt_secret, None, member_name(uid), int(time.time()))
    }


async def _direct(
    couchdb: Upstream, method: str, path: str, headers: dict[str, str], body: object = None
) -> int:
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        couchdb.url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **headers},
    )

    def send() -> int:
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    return await asyncio.to_thread(send)


async def test_jwt_mode_couchdb_enforces_membership(
    jwt_gateway: GatewayHarness, couchdb: Upstream
) -> None:
    alice = await jwt_gateway.new_device()
    bob = await jwt_gateway.new_device()
    assert (await jwt_gateway.call("PUT", "/db/notes/", device=alice))[0] == 201
    # Through couchgate, as the member, with a JWT: documents and checkpoints are writable.
    assert (await jwt_gateway.call("PUT", "/db/notes/a", device=alice, json={"v": 1}))[0] == 201
    assert (await jwt_gateway.call("PUT", "/db/notes/_local/cp", device=alice, json={"s": 1}))[
        0
    ] == 201
    db = f"/{jwt_gateway.upstream_db(alice, 'notes')}"
    # Straight at CouchDB with the same kind of token: CouchDB itself refuses the rest.
    assert (
        await _direct(
            couchdb, "PUT", f"{db}/_design/x", _as_member(couchdb, alice.user), {"views": {}}
        )
        == 403
    )
    assert await _direct(couchdb, "GET", f"{db}/a", _as_member(couchdb, bob.user)) == 403
    assert await _direct(couchdb, "GET", "/_all_dbs", _as_member(couchdb, alice.user)) in (401, 403)


async def test_couchdbs_replicator_through_couchgate(
    jwt_gateway: GatewayHarness, couchdb: Upstream
) -> None:
    device = await jwt_gateway.new_device()
    source = f"cg-replicator-source-{os.getpid()}"
    status, _ = await jwt_gateway.peek("PUT", f"/{source}")
    assert status in (201, 412)
    docs: list[dict[str, Any]] = [{"_id": f"d{i}", "v": i} for i in range(50)]
    docs[0]["_attachments"] = {
        "blob.bin": {
            "content_type": "application/octet-stream",
            "data": base64.b64encode(os.urandom(200_000)).decode(),
        }
    }
    assert (await jwt_gateway.peek("POST", f"/{source}/_bulk_docs", {"docs": docs}))[0] == 201

    host = GATEWAY_HOST_SEEN_BY_COUCHDB or "127.0.0.1"
    target = f"http://{host}:{jwt_gateway.server.port}/db/notes"
    auth = {"Authorization": f"Bearer {device.token}"}
    admin = f"{couchdb.url.replace('://', f'://{couchdb.user}:{couchdb.password}@')}/{source}"
    push = {"source": admin, "target": {"url": target, "headers": auth}, "create_target": False}
    assert (await jwt_gateway.call("PUT", "/db/notes/", device=device))[0] == 201
    status, result = await jwt_gateway.peek("POST", "/_replicate", push)
    assert status == 200 and result["ok"], result
    assert result["history"][0]["docs_written"] == 50
    status, info = await jwt_gateway.call("GET", "/db/notes", device=device)
    assert info["doc_count"] == 50
    status, doc = await jwt_gateway.call("GET", "/db/notes/d0", device=device)
    assert doc["_attachments"]["blob.bin"]["length"] == 200_000

    back = f"cg-replicator-back-{os.getpid()}"
    pull = {
        "source": {"url": target, "headers": auth},
        "target": admin.replace(source, back),
        "create_target": True,
    }
    status, result = await jwt_gateway.peek("POST", "/_replicate", pull)
    assert status == 200 and result["ok"], result
    assert (await jwt_gateway.peek("GET", f"/{back}"))[1]["doc_count"] == 50
    assert (await jwt_gateway.call("GET", "/db/_session", device=device))[0] == 404


async def test_a_document_over_8_mb_through_couchgate_to_couchdb(
    jwt_gateway: GatewayHarness,
) -> None:
    """CouchDB 3 refuses documents over its max_document_size (8 MB before 3.x defaults grew);
    the compose file and this container allow 16 MB, and couchgate passes 9 MB whole."""
    import io
    import json

    device = await jwt_gateway.new_device()
    assert (await jwt_gateway.call("PUT", "/db/notes/", device=device))[0] == 201
    blob = os.urandom(9 * 1024 * 1024 // 2).hex()
    status, body = await jwt_gateway.call(
        "PUT",
        "/db/notes/big",
        device=device,
        data=io.BytesIO(json.dumps({"blob": blob}).encode()),
        headers={"Content-Type": "application/json"},
    )
    assert status == 201, body
    status, doc = await jwt_gateway.call("GET", "/db/notes/big", device=device)
    assert status == 200 and doc["blob"] == blob
