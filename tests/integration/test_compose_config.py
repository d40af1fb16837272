"""The CouchDB configuration docker-compose.yml gives CouchDB, tried on a real CouchDB without
Docker: ``deploy/couchdb/local.ini`` applied as the image applies it, and the JWT key written by
the very entrypoint script compose runs (``deploy/couchdb/jwt-entrypoint.sh``) from the secret
compose hands it. ``couchgate check`` against that CouchDB finds no problem; a wrong JWT secret
and a too small ``max_document_size`` are each reported with their fix.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest

from gateway.cli import main
from gateway.config_values import env_name
from tests.conftest import NO_COUCHDB
from tests.harness import GatewayHarness, start_gateway, stop_gateway
from tests.upstreams import (
    DEPLOY_INI,
    REPO,
    CouchRelease,
    couchdb_release,
    couchdb_required,
    couchdb_test_server,
)

pytestmark = pytest.mark.couchdb

SECRET = "compose-jwt-secret-from-the-env-file-0123456789"
ENTRYPOINT = REPO / "deploy" / "couchdb" / "jwt-entrypoint.sh"


@pytest.fixture(scope="module")
def compose_couchdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CouchRelease]:
    if couchdb_test_server() is None:
        if couchdb_required():
            pytest.fail("COUCHGATE_REQUIRE_COUCHDB is set but there is no couchdb-test-server")
        pytest.skip(NO_COUCHDB)
    written = tmp_path_factory.mktemp("local.d") / "zz-couchgate-jwt.ini"
    subprocess.run(
        ["sh", str(ENTRYPOINT)],
        check=True,
        env={
            "PATH": os.environ["PATH"],
            "COUCHGATE_JWT_SECRET": SECRET,
            "COUCHGATE_JWT_INI": str(written),
            "COUCHGATE_NEXT_ENTRYPOINT": "true",
        },
    )
    assert oct(written.stat().st_mode & 0o777) == "0o600"
    with couchdb_release(inis=(DEPLOY_INI, written), jwt_secret=None) as release:
        yield release


@pytest.fixture
async def compose_gateway(compose_couchdb: CouchRelease) -> AsyncIterator[GatewayHarness]:
    node = compose_couchdb.nodes[0]
    gw = await start_gateway(node, upstream_auth="jwt", upstream_jwt_secret=SECRET)
    try:
        yield gw
    finally:
        await stop_gateway(gw)


async def test_couchgate_check_finds_nothing_wrong_with_the_compose_couchdb(
    compose_gateway: GatewayHarness,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = await _run_check(compose_gateway, monkeypatch, capsys)
    assert [line for line in lines if line.startswith("problem:")] == [], lines
    assert "ok: CouchDB's [jwt_keys] hmac:_default matches couchgate's JWT secret" in lines
    # And the mode works end to end: a device writes through couchgate as its member.
    device = await compose_gateway.new_device()
    assert (await compose_gateway.call("PUT", "/db/notes/", device=device))[0] == 201
    assert (await compose_gateway.call("PUT", "/db/notes/a", device=device, json={"v": 1}))[
        0
    ] == 201


async def test_a_wrong_jwt_secret_is_reported_with_its_fix(
    compose_gateway: GatewayHarness,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = await _run_check(
        compose_gateway, monkeypatch, capsys, upstream_jwt_secret="not-the-secret-" + "x" * 32
    )
    problems = [line for line in lines if line.startswith("problem:")]
    assert problems == [
        "problem: CouchDB's [jwt_keys] hmac:_default is not couchgate's JWT secret; fix: set "
        f"[jwt_keys] hmac:_default to the base64 of {env_name('upstream_jwt_secret')} "
        "(deploy/couchdb/jwt-entrypoint.sh does this from the environment)"
    ], lines
    assert SECRET not in "\n".join(lines)


async def test_a_too_small_max_document_size_is_reported_with_its_fix(
    compose_gateway: GatewayHarness,
    compose_couchdb: CouchRelease,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    node = compose_couchdb.nodes[0]
    path = "/_node/_local/_config/couchdb/max_document_size"
    status, before = await asyncio.to_thread(node.request, "PUT", path, "1048576")
    assert status == 200, before
    try:
        lines = await _run_check(compose_gateway, monkeypatch, capsys)
    finally:
        await asyncio.to_thread(node.request, "PUT", path, before)
    problems = [line for line in lines if line.startswith("problem:")]
    assert len(problems) == 1, lines
    assert (
        "max_document_size" in problems[0]
        and "; fix: raise [couchdb] max_document_size" in (problems[0])
    ), problems


async def _run_check(
    gw: GatewayHarness,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    **changed: str,
) -> list[str]:
    capsys.readouterr()
    settings = {
        "upstream_url": gw.settings.upstream_url,
        "upstream_user": gw.settings.upstream_user,
        "upstream_password": gw.settings.upstream_password,
        "upstream_auth": "jwt",
        "upstream_jwt_secret": SECRET,
        "secret_keys": ",".join(gw.settings.secret_keys),
        "records_db": gw.settings.records_db,
        "registration": "open",
        **changed,
    }
    for name, value in settings.items():
        assert value is not None
        monkeypatch.setenv(env_name(name), str(value))
    code = await asyncio.to_thread(main, ["check"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    has_problem = any(line.startswith("problem:") for line in lines)
    assert (code != 0) == has_problem, (code, lines)
    return lines
