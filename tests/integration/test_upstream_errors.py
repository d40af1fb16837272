"""Upstream error answers reach clients only in CouchDB's shape, naming nothing internal (issue 9,
finding 2): pouchdb-server's express error page carried a stack trace and server paths."""

from __future__ import annotations

import pytest
from yarl import URL

from tests.harness import GatewayHarness

LEAKS = ("node_modules", "/work", "<html", "<pre", " at ", "Error:", "{file,")


@pytest.mark.parametrize(
    "path",
    [
        "/db/notes/%FF",  # a valid escape express cannot decode: its error page
        "/db/notes/%E0%A4%A",  # an incomplete escape: CouchDB's invalid_url_encoding
        "/db/notes/doc%2",
        "/db/notes/%C0%AF/att",
    ],
)
async def test_error_answers_are_couchdb_json_and_name_nothing_internal(
    gateway: GatewayHarness, path: str
) -> None:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    async with gateway.session.get(
        URL(gateway.url + path, encoded=True), headers=device.headers
    ) as r:
        text = await r.text()
        assert 400 <= r.status < 500, text
        assert r.content_type == "application/json", text
    _, answer = await gateway.call("GET", path, device=device)
    assert set(answer) == {"error", "reason"}, answer
    assert not any(leak in text for leak in LEAKS), text
    assert device.user not in text and gateway.upstream_db(device, "notes") not in text
    assert (await gateway.peek("GET", "/"))[0] == 200


async def test_database_info_names_the_app_not_the_internal_database(
    gateway: GatewayHarness,
) -> None:
    device = await gateway.new_device()
    assert (await gateway.call("PUT", "/db/notes", device=device))[0] == 201
    for path in ("/db/notes", "/db/notes/"):
        async with gateway.session.get(gateway.url + path, headers=device.headers) as r:
            text = await r.text()
            assert r.status == 200 and r.content_type == "application/json", text
        assert device.user not in text
        status, info = await gateway.call("GET", path, device=device)
        assert info["db_name"] == "notes" and "doc_count" in info
    status, missing = await gateway.call("GET", "/db/other", device=device)
    assert status == 404 and device.user not in str(missing)
