"""Nothing of the upstream but the user's own database is reachable, through any path."""

from __future__ import annotations

import base64
import json

import pytest
from yarl import URL

from tests.harness import Device, GatewayHarness

REFUSED = [
    ("GET", "/_all_dbs"),
    ("GET", "/_users"),
    ("GET", "/_users/org.couchdb.user:admin"),
    ("POST", "/_replicate"),
    ("GET", "/_node/_local/_config"),
    ("GET", "/_session"),
    ("GET", "/_utils"),
    ("GET", "/_active_tasks"),
    ("GET", "/db/_all_dbs"),
    ("GET", "/db/_session"),
    ("POST", "/db/_session"),
    ("GET", "/db/_users"),
    ("GET", "/db/_replicator"),
    ("PUT", "/db/notes/_design/x"),
    ("GET", "/db/notes/_design/x"),
    ("PUT", "/db/notes/_design%2Fx"),
    ("PUT", "/db/notes/%5Fdesign%2Fx"),
    ("GET", "/db/notes/_design/x/_view/v"),
    ("GET", "/db/notes/_security"),
    ("PUT", "/db/notes/_security"),
    ("POST", "/db/notes/_find"),
    ("POST", "/db/notes/_index"),
    ("POST", "/db/notes/_explain"),
    ("POST", "/db/notes/_purge"),
    ("POST", "/db/notes/_compact"),
    ("POST", "/db/notes/_view_cleanup"),
    ("PUT", "/db/notes/_revs_limit"),
    ("GET", "/db/notes/_partition/x/_all_docs"),
    ("GET", "/db/notes/../../_all_dbs"),
    ("GET", "/db/notes/%2e%2e/%2e%2e/_all_dbs"),
    ("GET", "/db/notes/%2E%2E"),
    ("GET", "/db/notes%2F..%2F_all_dbs"),
    ("GET", "/db/%2E%2E/_all_dbs"),
    ("GET", "/db/notes/_changes?filter=app%2Fmine"),
    ("GET", "/db/notes/_changes?filter=_view&view=a/b"),
    ("GET", "/db/NOTES"),
    ("POST", "/db/notes/"),
    ("COPY", "/db/notes/doc"),
]


async def _provisioned(gateway: GatewayHarness, device: Device, app: str = "notes") -> None:
    status, body = await gateway.call("PUT", f"/db/{app}/", device=device)
    assert status in (201, 412), body


@pytest.mark.parametrize(("method", "path"), REFUSED)
async def test_every_refused_path_answers_a_json_4xx(
    gateway: GatewayHarness, method: str, path: str
) -> None:
    device = await gateway.new_device()
    await _provisioned(gateway, device)
    async with gateway.session.request(
        method,
        URL(gateway.url + path, encoded=True),
        headers=device.headers,
        json={"_id": "_design/x"} if method in ("PUT", "POST") else None,
    ) as r:
        assert 400 <= r.status < 500, (r.status, await r.text())
        assert r.content_type == "application/json"
        body = json.loads(await r.text())
        assert set(body) == {"error", "reason"}


async def test_design_docs_inside_bulk_docs_are_refused_per_document(
    gateway: GatewayHarness,
) -> None:
    device = await gateway.new_device()
    await _provisioned(gateway, device)
    status, results = await gateway.call(
        "POST",
        "/db/notes/_bulk_docs",
        device=device,
        json={
            "docs": [
                {"_id": "one", "v": 1},
                {"_id": "_design/evil", "validate_doc_update": "function(){}"},
                {"_id": "two", "v": 2},
            ]
        },
    )
    assert status == 201
    assert [r.get("id") for r in results] == ["one", "_design/evil", "two"]
    assert results[1] == {
        "id": "_design/evil",
        "error": "forbidden",
        "reason": "design documents are not available through couchgate",
    }
    assert results[0]["ok"] and results[2]["ok"]
    upstream_status, _ = await gateway.peek(
        "GET", f"/{gateway.upstream_db(device, 'notes')}/_design/evil"
    )
    assert upstream_status == 404
    # new_edits=false, as replicators write: the same refusal.
    status, results = await gateway.call(
        "POST",
        "/db/notes/_bulk_docs",
        device=device,
        json={"new_edits": False, "docs": [{"_id": "_design/x", "_rev": "1-abc"}]},
    )
    assert status == 201 and results[0]["error"] == "forbidden"


async def test_a_second_user_never_sees_the_first_users_data(gateway: GatewayHarness) -> None:
    alice = await gateway.new_device()
    bob = await gateway.new_device()
    await _provisioned(gateway, alice)
    assert (await gateway.call("PUT", "/db/notes/secret", device=alice, json={"text": "alice's"}))[
        0
    ] == 201

    # Bob's "notes" is his own: it does not exist until he provisions it, then it is empty.
    assert (await gateway.call("GET", "/db/notes", device=bob))[0] == 404
    assert (await gateway.call("GET", "/db/notes/secret", device=bob))[0] == 404
    await _provisioned(gateway, bob)
    assert (await gateway.call("GET", "/db/notes/secret", device=bob))[0] == 404
    status, all_docs = await gateway.call("GET", "/db/notes/_all_docs", device=bob)
    assert status == 200 and all_docs["rows"] == []
    status, changes = await gateway.call("GET", "/db/notes/_changes", device=bob)
    assert status == 200 and changes["results"] == []
    status, got = await gateway.call(
        "POST", "/db/notes/_bulk_get", device=bob, json={"docs": [{"id": "secret"}]}
    )
    assert status == 200 and "alice's" not in json.dumps(got)
    # Naming Alice's upstream database as an app only reaches another database of Bob's.
    alice_db = gateway.upstream_db(alice, "notes")
    status, _ = await gateway.call("GET", f"/db/{alice_db}/secret", device=bob)
    assert status == 404
    # Deleting is per user too.
    assert (await gateway.call("DELETE", "/db/notes/", device=bob))[0] == 200
    assert (await gateway.call("GET", "/db/notes/secret", device=alice))[0] == 200
    # Bob's uuid differs from Alice's: replication ids never collide.
    _, alice_root = await gateway.call("GET", "/db/", device=alice)
    _, bob_root = await gateway.call("GET", "/db/", device=bob)
    assert alice_root["uuid"] != bob_root["uuid"]


async def test_the_user_is_only_a_member_of_its_database(gateway: GatewayHarness) -> None:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes/", device=device))[0] == 201
    status, security = await gateway.peek(
        "GET", f"/{gateway.upstream_db(device, 'notes')}/_security"
    )
    assert status == 200
    assert security["members"]["names"] == [f"u{device.user}"]
    assert f"u{device.user}" not in json.dumps(security.get("admins", {}))


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer nonsense",
        "Bearer cg1.aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbb.secret",
        "Basic " + base64.b64encode(b"admin:couchgate-test-admin").decode(),
        "Digest x",
    ],
)
async def test_missing_or_wrong_credentials_get_a_json_401(
    gateway: GatewayHarness, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for method, path in [
        ("GET", "/db/"),
        ("GET", "/db/notes"),
        ("GET", "/db/notes/_changes"),
        ("PUT", "/db/notes/"),
        ("GET", "/auth/me"),
    ]:
        status, body = await gateway.call(method, path, headers=headers)
        assert status == 401 and body["error"] == "unauthorized", (method, path, body)


async def test_a_revoked_token_gets_a_json_401_everywhere(gateway: GatewayHarness) -> None:
    device = await gateway.new_device()
    await _provisioned(gateway, device)
    await gateway.revoke(device)
    for method, path in [
        ("GET", "/db/notes"),
        ("GET", "/db/notes/_all_docs"),
        ("GET", "/auth/devices"),
    ]:
        assert await gateway.call(method, path, device=device) == (
            401,
            {"error": "unauthorized", "reason": "invalid or revoked token"},
        )


async def test_client_identity_headers_and_cookies_are_not_forwarded(
    gateway: GatewayHarness,
) -> None:
    device = await gateway.new_device()
    await _provisioned(gateway, device)
    async with gateway.session.get(
        gateway.url + "/db/notes",
        headers={
            **device.headers,
            "X-Auth-CouchDB-UserName": "admin",
            "X-Auth-CouchDB-Roles": "_admin",
            "Cookie": "AuthSession=stolen",
        },
    ) as r:
        assert r.status == 200
        assert "Set-Cookie" not in r.headers and r.headers.get("Server") == "couchgate"
        assert "WWW-Authenticate" not in r.headers


async def test_oversized_writes_get_413_and_nothing_is_written(make_gateway: object) -> None:
    gateway = await make_gateway(max_request_size=4096)  # type: ignore[operator]
    device = await gateway.new_device()
    await _provisioned(gateway, device)
    big = {"docs": [{"_id": "big", "blob": "x" * 8192}]}
    assert await gateway.call("POST", "/db/notes/_bulk_docs", device=device, json=big) == (
        413,
        {"error": "too_large", "reason": "the request body is larger than 4096 bytes"},
    )
    assert (await gateway.call("PUT", "/db/notes/big", device=device, json=big["docs"][0]))[
        0
    ] == 413
    assert (await gateway.call("GET", "/db/notes/big", device=device))[0] == 404
