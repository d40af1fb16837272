"""What only a real Apache CouchDB can show: each upstream auth mode (``jwt``, the compose
default; ``proxy``; ``admin``) with CouchDB enforcing ``_security`` where the mode lets it, and
CouchDB's own replicator replicating through couchgate, to it, from it and between two
couchgates.

The whole gateway suite runs against CouchDB in ``jwt`` mode as well (``tests/conftest.py``).
These run wherever a CouchDB is found (``tests/upstreams.py``); where none is they skip and their
twins run: the same replication flows with the real PouchDB client
(``test_pouchdb_replication.py``) and the same isolation checks (``test_isolation.py``) against
pouchdb-server and the embedded store; the JWT claims and proxy headers are unit-tested
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

from gateway import keys
from gateway.upstream.backend import member_name
from gateway.upstream.member_auth import basic_header, jwt_header, proxy_token
from tests.conftest import couchdb_settings
from tests.harness import GatewayHarness, start_gateway_on, stop_gateway
from tests.pouch import device_remote, run_pouch
from tests.upstreams import Upstream

pytestmark = pytest.mark.couchdb

# How CouchDB reaches a gateway the tests start: loopback for a CouchDB on this host, the
# Docker host's address for a container.
GATEWAY_HOST_SEEN_BY_COUCHDB = os.environ.get("COUCHGATE_TEST_GATEWAY_HOST")
MODES = ["jwt", "proxy", "admin"]


async def _gateway(couchdb: Upstream, mode: str) -> GatewayHarness:
    if mode == "proxy" and not couchdb.proxy_secret:
        pytest.skip("this CouchDB's proxy secret is unknown (COUCHDB_PROXY_SECRET)")
    if mode == "jwt" and not couchdb.jwt_secret:
        pytest.skip("this CouchDB's JWT secret is unknown (COUCHDB_JWT_SECRET)")
    host = "0.0.0.0" if GATEWAY_HOST_SEEN_BY_COUCHDB else "127.0.0.1"
    return await start_gateway_on(host, couchdb, **couchdb_settings(couchdb, mode))


@pytest.fixture(params=MODES)
async def mode_gateway(
    request: pytest.FixtureRequest, couchdb: Upstream
) -> AsyncIterator[GatewayHarness]:
    gw = await _gateway(couchdb, request.param)
    try:
        yield gw
    finally:
        await stop_gateway(gw)


@pytest.fixture
async def jwt_gateway(couchdb: Upstream) -> AsyncIterator[GatewayHarness]:
    gw = await _gateway(couchdb, "jwt")
    try:
        yield gw
    finally:
        await stop_gateway(gw)


def _as_member(couchdb: Upstream, uid: str, mode: str = "jwt") -> dict[str, str]:
    """What couchgate sends CouchDB to act as one member, in ``jwt`` or ``proxy`` mode."""
    member = member_name(uid)
    if mode == "proxy":
        assert couchdb.proxy_secret is not None
        return {
            "X-Auth-CouchDB-UserName": member,
            "X-Auth-CouchDB-Roles": "",
            "X-Auth-CouchDB-Token": proxy_token(couchdb.proxy_secret, member),
        }
    assert couchdb.jwt_secret is not None
    return {"Authorization": jwt_header(couchdb.jwt_secret, None, member, int(time.time()))}


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


async def test_every_mode_replicates_and_keeps_users_apart(mode_gateway: GatewayHarness) -> None:
    gw = mode_gateway
    alice = await gw.new_device()
    bob = await gw.new_device()
    docs = [{"_id": f"d{i:03d}", "v": i} for i in range(200)]
    pushed = await run_pouch("push", remote=device_remote(alice, "notes"), docs=docs)
    assert pushed["result"]["replication"]["docs_written"] == len(docs)
    pulled = await run_pouch("pull", remote=device_remote(alice, "notes"))
    assert [d["_id"] for d in pulled["result"]["docs"]] == [d["_id"] for d in docs]
    # Bob's notes are his own database: empty, and Alice's stay out of his reach.
    assert (await gw.call("PUT", "/db/notes/", device=bob))[0] == 201
    status, info = await gw.call("GET", "/db/notes", device=bob)
    assert (status, info["doc_count"]) == (200, 0)
    assert (await gw.call("GET", "/db/notes/d000", device=bob))[0] == 404
    # Checkpoints are writable, design documents never.
    assert (await gw.call("PUT", "/db/notes/_local/cp", device=alice, json={"s": 1}))[0] == 201
    status, body = await gw.call("PUT", "/db/notes/_design/x", device=alice, json={"views": {}})
    assert status in (403, 404) and set(body) == {"error", "reason"}, body


@pytest.mark.parametrize("mode", ["jwt", "proxy"])
async def test_couchdb_itself_enforces_membership(couchdb: Upstream, mode: str) -> None:
    """In jwt and proxy modes couchgate's member credentials are all CouchDB grants: a member
    may write its own database's documents, and CouchDB refuses the rest itself."""
    gw = await _gateway(couchdb, mode)
    try:
        alice = await gw.new_device()
        bob = await gw.new_device()
        assert (await gw.call("PUT", "/db/notes/", device=alice))[0] == 201
        assert (await gw.call("PUT", "/db/notes/a", device=alice, json={"v": 1}))[0] == 201
        db = f"/{gw.upstream_db(alice, 'notes')}"
        as_alice = _as_member(couchdb, alice.user, mode)
        assert await _direct(couchdb, "GET", f"{db}/a", as_alice) == 200
        assert await _direct(couchdb, "PUT", f"{db}/_design/x", as_alice, {"views": {}}) == 403
        assert await _direct(couchdb, "GET", f"{db}/a", _as_member(couchdb, bob.user, mode)) == 403
        assert await _direct(couchdb, "GET", "/_all_dbs", as_alice) in (401, 403)
        if mode == "proxy":
            forged = {**as_alice, "X-Auth-CouchDB-Token": "0" * 64}
            assert await _direct(couchdb, "GET", f"{db}/a", forged) in (401, 403)
    finally:
        await stop_gateway(gw)


@pytest.mark.parametrize("mode", ["jwt", "proxy"])
async def test_a_database_left_admin_only_is_given_back_to_its_user(
    couchdb: Upstream, mode: str
) -> None:
    """A gateway stopped between recording an app, creating its database and writing its
    ``_security`` leaves the database admin-only (CouchDB's default for a new one), closed to
    its user; the next replication's first request makes the user its member again. A database
    named for a user whose account does not list the app stays closed."""
    gw = await _gateway(couchdb, mode)
    try:
        assert couchdb.user is not None and couchdb.password is not None
        admin = {"Authorization": basic_header(couchdb.user, couchdb.password)}
        alice = await gw.new_device()
        assert await gw.app[keys.IDENTITIES].add_app(alice.user, "notes") is True
        db = f"/{gw.upstream_db(alice, 'notes')}"
        assert await _direct(couchdb, "PUT", db, admin) == 201
        as_alice = _as_member(couchdb, alice.user, mode)
        assert await _direct(couchdb, "GET", db, as_alice) == 403  # what the cut left

        docs = [{"_id": f"n{i}", "v": i} for i in range(3)]
        pushed = await run_pouch("push", remote=device_remote(alice, "notes"), docs=docs)
        assert pushed["result"]["replication"]["docs_written"] == len(docs)
        assert await _direct(couchdb, "GET", db, as_alice) == 200

        bob = await gw.new_device()
        assert await _direct(couchdb, "PUT", f"/{gw.upstream_db(bob, 'notes')}", admin) == 201
        status, body = await gw.call("GET", "/db/notes", device=bob)
        assert status == 403 and set(body) == {"error", "reason"}, body
    finally:
        await stop_gateway(gw)


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


async def test_couchdbs_replicator_moves_a_users_data_between_two_couchgates(
    jwt_gateway: GatewayHarness, couchdb: Upstream
) -> None:
    """A user's database on one couchgate, replicated by CouchDB's ``_replicate`` to the same
    user's database on another couchgate and back: a way to move or back up one's encrypted
    data, with every revision kept."""
    other = await _gateway(couchdb, "jwt")
    try:
        here = await jwt_gateway.new_device()
        there = await other.new_device()
        host = GATEWAY_HOST_SEEN_BY_COUCHDB or "127.0.0.1"

        def remote(gw: GatewayHarness, token: str) -> dict[str, Any]:
            return {
                "url": f"http://{host}:{gw.server.port}/db/notes",
                "headers": {"Authorization": f"Bearer {token}"},
            }

        docs = [{"_id": f"n{i:02d}", "v": i} for i in range(40)]
        assert (await jwt_gateway.call("PUT", "/db/notes/", device=here))[0] == 201
        assert (await other.call("PUT", "/db/notes/", device=there))[0] == 201
        status, _ = await jwt_gateway.call(
            "POST", "/db/notes/_bulk_docs", device=here, json={"docs": docs}
        )
        assert status == 201
        # An edit, so revision histories longer than one travel too.
        status, first = await jwt_gateway.call("GET", "/db/notes/n00", device=here)
        first["v"] = "edited"
        assert (await jwt_gateway.call("PUT", "/db/notes/n00", device=here, json=first))[0] == 201

        there_to = {"source": remote(jwt_gateway, here.token), "target": remote(other, there.token)}
        status, result = await jwt_gateway.peek("POST", "/_replicate", there_to)
        assert status == 200 and result["ok"], result
        assert result["history"][0]["docs_written"] == len(docs)

        async def revs(gw: GatewayHarness, device: Any) -> dict[str, str]:
            status, listing = await gw.call("GET", "/db/notes/_all_docs", device=device)
            assert status == 200
            return {row["id"]: row["value"]["rev"] for row in listing["rows"]}

        assert await revs(other, there) == await revs(jwt_gateway, here)
        status, moved = await other.call("GET", "/db/notes/n00?revs=true", device=there)
        assert (moved["v"], moved["_revisions"]["start"]) == ("edited", 2)

        # Written on the second server, replicated back: the first takes it, no conflicts.
        moved["v"] = "from the other side"
        assert (await other.call("PUT", "/db/notes/n00", device=there, json=moved))[0] == 201
        back = {"source": remote(other, there.token), "target": remote(jwt_gateway, here.token)}
        status, result = await jwt_gateway.peek("POST", "/_replicate", back)
        assert status == 200 and result["ok"], result
        assert result["history"][0]["docs_written"] == 1
        status, doc = await jwt_gateway.call("GET", "/db/notes/n00?conflicts=true", device=here)
        assert (doc["v"], doc.get("_conflicts")) == ("from the other side", None)
        assert await revs(other, there) == await revs(jwt_gateway, here)
    finally:
        await stop_gateway(other)
