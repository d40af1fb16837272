"""Bodies a careless or hostile client sends: every one a 4xx in CouchDB's shape, never a 500,
on every upstream (issue 9, findings 7, 10 and 11)."""

from __future__ import annotations

import asyncio

import pytest

from tests.harness import GatewayHarness, MakeGateway

JSON = {"Content-Type": "application/json"}


def nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def nested_in(field: str, depth: int) -> bytes:
    return b'{"' + field.encode() + b'":' + nested(depth) + b"}"


def assert_bad_request(answer: tuple[int, object], *, or_too_large: bool = False) -> None:
    status, body = answer
    assert isinstance(body, dict) and set(body) == {"error", "reason"}, answer
    if or_too_large and status == 413:
        assert body["error"] == "too_large", body
        return
    assert status == 400, answer
    assert body["error"] == "bad_request", body


@pytest.mark.parametrize("depth", [8_000, 100_000])
@pytest.mark.parametrize("path", ["/auth/code", "/auth/token", "/auth/enroll", "/auth/link/redeem"])
async def test_deep_json_to_the_sign_in_routes_is_a_bad_request(
    gateway: GatewayHarness, path: str, depth: int
) -> None:
    """8,000 levels fit in the sign-in routes' 16 KiB: 400; 100,000 do not: 413 first."""
    big = depth > 8_000
    answer = await gateway.call("POST", path, data=nested(depth), headers=JSON)
    assert_bad_request(answer, or_too_large=big)
    answer = await gateway.call("POST", path, data=nested_in("email", depth), headers=JSON)
    assert_bad_request(answer, or_too_large=big)
    assert (await gateway.call("GET", "/healthz"))[0] == 200


@pytest.mark.parametrize("depth", [8_000, 100_000])
async def test_deep_json_to_every_body_endpoint_is_a_bad_request(
    gateway: GatewayHarness, depth: int
) -> None:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/deep", device=device))[0] == 201
    deep_doc = nested_in("v", depth)
    bulk = b'{"docs":[' + deep_doc + b"]}"
    boundary = "deepboundary"
    multipart = (
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode()
        + deep_doc
        + f"\r\n--{boundary}--\r\n".encode()
    )
    streamed = [
        ("POST", f"/db/deep/{endpoint}", body, JSON)
        for endpoint in (
            "_revs_diff",
            "_bulk_get",
            "_all_docs",
            "_changes",
            "_changes?filter=_doc_ids",
            "_ensure_full_commit",
        )
        for body in (nested(depth), nested_in("docs", depth), nested_in("a", depth))
    ]
    for method, path, body, headers in [
        *streamed,
        ("POST", "/db/deep/_bulk_docs", bulk, JSON),
        ("POST", "/db/deep/_bulk_docs", nested(depth), JSON),
        ("PUT", "/db/deep/doc1", deep_doc, JSON),
        ("PUT", "/db/deep/_local/check", deep_doc, JSON),
        (
            "PUT",
            "/db/deep/doc2",
            multipart,
            {"Content-Type": f"multipart/related; boundary={boundary}"},
        ),
    ]:
        answer = await gateway.call(method, path, device=device, data=body, headers=headers)
        # Checkpoints are capped at 64 KiB: 100,000 levels are refused for their size first.
        assert_bad_request(answer, or_too_large="_local" in path and len(body) > 64 * 1024)
    status, _ = await gateway.call("GET", "/db/deep/doc1", device=device)
    assert status == 404


@pytest.mark.parametrize(
    "raw",
    [b'{"v":NaN}', b'{"v":1e999999}', b'{"v":"\\ud800"}', b'{"v":"\xed\xa0\x80"}'],
    ids=["nan", "huge-number", "escaped-lone-surrogate", "raw-surrogate"],
)
async def test_json_couchdb_refuses_is_refused_before_it_is_forwarded(
    gateway: GatewayHarness, raw: bytes
) -> None:
    """CouchDB 3.5.2 answers 400 "invalid UTF-8 JSON" to each of these; so does the gateway,
    whatever its upstream would have made of them."""
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/odd", device=device))[0] == 201
    expected = (400, {"error": "bad_request", "reason": "invalid UTF-8 JSON"})
    assert await gateway.call("PUT", "/db/odd/d", device=device, data=raw, headers=JSON) == expected
    bulk = b'{"docs":[' + raw + b"]}"
    assert (
        await gateway.call("POST", "/db/odd/_bulk_docs", device=device, data=bulk, headers=JSON)
        == expected
    )
    for endpoint in ("_revs_diff", "_bulk_get", "_all_docs", "_changes"):
        answer = await gateway.call(
            "POST", f"/db/odd/{endpoint}", device=device, data=raw, headers=JSON
        )
        assert answer == expected, endpoint
    assert await gateway.call("POST", "/auth/enroll", data=raw, headers=JSON) == expected


async def test_parallel_wrong_codes_are_charged_before_they_are_evaluated(
    make_gateway: MakeGateway,
) -> None:
    """Finding 10: 200 wrong enrollment codes at once from one address; no more than the hourly
    budget are looked at, the rest get 429 with Retry-After."""
    gw = await make_gateway(ip_signins_per_hour=60)

    async def attempt(i: int) -> tuple[int, str | None]:
        url = gw.url + "/auth/enroll"
        async with gw.session.post(url, json={"code": f"wrong-{i:04d}", "device": "d"}) as r:
            await r.read()
            return r.status, r.headers.get("Retry-After")

    answers = await asyncio.gather(*(attempt(i) for i in range(200)))
    evaluated = [a for a in answers if a[0] == 401]
    refused = [a for a in answers if a[0] == 429]
    assert len(evaluated) + len(refused) == 200, answers
    assert len(evaluated) <= 60, len(evaluated)
    assert all(retry is not None and int(retry) >= 1 for _, retry in refused)


@pytest.mark.parametrize(
    "address",
    [
        "a\x00b@example.org",
        "a@exa\x00mple.org",
        "a b@example.org",
        "a@@example.org",
        "a@example",
        "a@-example.org",
        "a@example..org",
        "\u202ea@example.org",
        "a@example.org\r\nBcc: x@example.org",
    ],
    ids=[
        "nul-local",
        "nul-domain",
        "space",
        "two-ats",
        "no-tld",
        "bad-label",
        "empty-label",
        "bidi",
        "header-injection",
    ],
)
async def test_code_requests_for_addresses_that_are_not_addresses_are_refused(
    gateway: GatewayHarness, address: str
) -> None:
    """Finding 11: validated by a maintained library (no DNS), answered 400 in CouchDB's shape."""
    answer = await gateway.call("POST", "/auth/code", json={"email": address})
    assert_bad_request(answer)


async def test_a_real_address_still_gets_a_code(gateway: GatewayHarness) -> None:
    status, body = await gateway.call(
        "POST", "/auth/code", json={"email": "Some.One+tag@Sub.Example.org"}
    )
    assert status == 202, body


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_body_is_refused_before_it_is_read(
    gateway: GatewayHarness, encoding: str
) -> None:
    """Found by the fuzz suite: aiohttp failed reading a body that does not decode as its
    Content-Encoding, which was a 500. aiohttp no longer inflates anything (web/bodies.py): only
    the import takes gzip, and every other route refuses an encoding with 415, as /db always did,
    however the body would have decoded."""
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/enc", device=device))[0] == 201
    headers = {**JSON, "Content-Encoding": encoding}
    body = b'{"docs": [{"_id": "a"}]}'
    refused = (
        415,
        {"error": "bad_content_type", "reason": f"{encoding} is not a supported content encoding."},
    )
    assert await gateway.call("POST", "/auth/code", data=body, headers=headers) == refused
    status, answer = await gateway.call(
        "POST", "/db/enc/_bulk_docs", device=device, data=body, headers=headers
    )
    assert (status, answer) == refused


@pytest.mark.parametrize("endpoint", ["_revs_diff", "_bulk_get", "_all_docs", "_changes"])
async def test_replication_posts_are_refused_as_couchdb_refuses_them(
    gateway: GatewayHarness, endpoint: str
) -> None:
    """What CouchDB 3.5.2 answers to a POST with no body, or not JSON by its Content-Type, the
    gateway answers before forwarding: the upstream never sees such a request."""
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/posts", device=device))[0] == 201
    path = f"/db/posts/{endpoint}"
    assert await gateway.call("POST", path, device=device, headers=JSON) == (
        400,
        {"error": "bad_request", "reason": "Missing request body"},
    )
    assert await gateway.call(
        "POST", path, device=device, data=b"{}", headers={"Content-Type": "text/plain"}
    ) == (415, {"error": "bad_content_type", "reason": "Content-Type must be application/json"})
    status, _ = await gateway.call(
        "POST", "/db/posts/_ensure_full_commit", device=device, headers=JSON
    )
    assert status == 201
