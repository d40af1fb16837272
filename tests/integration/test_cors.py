"""couchgate answers CORS itself: configured origins only, with credentials, never a wildcard;
the upstream's own CORS headers never reach the browser."""

from __future__ import annotations

from tests.harness import MakeGateway

APP_ORIGIN = "https://notes.example"


async def test_preflight_from_an_allowed_origin(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(cors_origins=APP_ORIGIN)
    async with gw.session.options(
        gw.url + "/db/notes/_bulk_docs",
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    ) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
        assert r.headers["Access-Control-Allow-Credentials"] == "true"
        assert "POST" in r.headers["Access-Control-Allow-Methods"]
        assert r.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
        assert "Origin" in r.headers["Vary"]


async def test_preflight_from_another_origin_is_refused(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(cors_origins=APP_ORIGIN)
    async with gw.session.options(
        gw.url + "/db/notes/",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    ) as r:
        assert r.status == 403
        assert "Access-Control-Allow-Origin" not in r.headers
        assert await r.json() == {"error": "forbidden", "reason": "origin not allowed"}


async def test_actual_responses_carry_couchgates_cors_only(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(cors_origins=APP_ORIGIN)
    device = await gw.new_device()
    assert (await gw.call("PUT", "/db/notes/", device=device))[0] == 201
    for origin, allowed in ((APP_ORIGIN, True), ("https://evil.example", False)):
        for path in ("/db/notes", "/db/notes/_changes", "/db/notes/missing-doc"):
            async with gw.session.get(
                gw.url + path, headers={**device.headers, "Origin": origin}
            ) as r:
                assert r.headers.getall("Access-Control-Allow-Origin", []) == (
                    [origin] if allowed else []
                ), path
                if allowed:
                    assert r.headers["Access-Control-Allow-Credentials"] == "true"
                    assert "ETag" in r.headers["Access-Control-Expose-Headers"]
    # Errors are readable by the app too (a 401 a browser app must be able to see).
    async with gw.session.get(gw.url + "/db/notes", headers={"Origin": APP_ORIGIN}) as r:
        assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
