"""``couchgate`` commands through ``main(argv)``, against the same upstream a running gateway uses
(or the same embedded store directory), and checked through that gateway."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping

import pytest
from aiosmtpd.controller import Controller

from gateway.cli import main
from gateway.config_values import env_name
from tests.harness import GatewayHarness, MakeGateway
from tests.upstreams import free_port


class Sink:
    """An SMTP server's handler that takes every message and keeps none."""

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


def _use_settings_of(gw: GatewayHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the CLI at what the gateway uses, through the environment as an admin would."""
    for name in gw.settings.redacted():
        monkeypatch.delenv(env_name(name), raising=False)
        real = getattr(gw.settings, name)
        if real is None or real == () or (isinstance(real, Mapping) and not real):
            continue
        if isinstance(real, Mapping):
            text = json.dumps({app: dataclasses.asdict(limits) for app, limits in real.items()})
        else:
            text = ",".join(real) if isinstance(real, tuple) else str(real)
        monkeypatch.setenv(env_name(name), text)


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_users_and_devices_lifecycle(
    make_gateway: MakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = await make_gateway(registration="invite")
    _use_settings_of(gw, monkeypatch)

    assert await _cli("users", "add", "carol@example.org", "--json") == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    added = json.loads(out[0])
    assert set(added) == {"user", "enrollment_code", "link"}

    status, signed_in = await gw.call(
        "POST", "/auth/enroll", json={"code": added["enrollment_code"], "device": "laptop"}
    )
    assert status == 201 and signed_in["user"] == added["user"]

    assert await _cli("users", "list", "--json") == 0
    users = json.loads(capsys.readouterr().out)
    assert [(u["user"], u["devices"]) for u in users] == [(added["user"], 1)]

    assert await _cli("devices", "list", "--json") == 0
    devices = json.loads(capsys.readouterr().out)
    assert [(d["id"], d["name"]) for d in devices] == [(signed_in["device"], "laptop")]

    assert await _cli("devices", "revoke", signed_in["device"]) == 0
    capsys.readouterr()
    headers = {"Authorization": f"Bearer {signed_in['token']}"}
    assert (await gw.call("GET", "/auth/me", headers=headers))[0] == 401

    # Adding an existing address issues a fresh code for the same account.
    assert await _cli("users", "add", "Carol@Example.org", "--json") == 0
    assert json.loads(capsys.readouterr().out)["user"] == added["user"]

    assert await _cli("users", "remove", "carol@example.org") == 0
    assert added["user"] in capsys.readouterr().out
    assert await _cli("users", "list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("users", "remove", "nobody@example.org"), "couchgate: no such user: nobody@example.org"),
        (("devices", "revoke", "aaaaaaaaaaaaaaaa"), "couchgate: no such device: aaaaaaaaaaaaaaaa"),
        (("users", "add", "not-an-address"), "couchgate: 'not-an-address' is not an email address"),
    ],
)
async def test_command_errors_are_one_line_and_exit_1(
    make_gateway: MakeGateway,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    message: str,
) -> None:
    _use_settings_of(await make_gateway(), monkeypatch)
    assert await _cli(*argv) == 1
    assert capsys.readouterr().err.splitlines() == [message]


async def test_check_reports_what_it_verified(
    make_gateway: MakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = await make_gateway()
    _use_settings_of(gw, monkeypatch)
    assert await _cli("check") == 0
    lines = capsys.readouterr().out.splitlines()
    print("\n".join(lines))
    mode = gw.settings.upstream_auth
    assert lines[0] == f"ok: configuration ({mode} mode, registration open)"
    assert lines[-1].startswith("note: no browser origins are allowed")
    assert not [line for line in lines if line.startswith("problem:")]
    assert any(line.startswith("ok: admin credentials accepted") for line in lines)
    if gw.upstream.kind == "embedded":
        assert "note: the upstream (the embedded store) does not show its configuration" in (
            "\n".join(lines)
        )


def test_a_bad_setting_stops_every_command_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COUCHGATE_SECRET_KEYS", "k" * 40)
    monkeypatch.setenv("COUCHGATE_PORT", "eighty")
    for argv in (["check"], ["serve"], ["users", "list"]):
        assert main(argv) == 2
        assert capsys.readouterr().err.splitlines() == [
            "couchgate: COUCHGATE_PORT: must be a whole number; got 'eighty'"
        ]


def test_an_unreachable_upstream_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COUCHGATE_SECRET_KEYS", "k" * 40)
    monkeypatch.setenv("COUCHGATE_UPSTREAM_URL", "http://127.0.0.1:9")
    assert main(["users", "list"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        "couchgate: the upstream at http://127.0.0.1:9 is not reachable"
    )
    # check says the same as one of its findings, with the fix, and exits 1.
    assert main(["check"]) == 1
    captured = capsys.readouterr()
    problems = [line for line in captured.out.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1
    assert problems[0].startswith("problem: the upstream at http://127.0.0.1:9 is not reachable")
    assert problems[0].endswith("fix: start CouchDB or correct COUCHGATE_UPSTREAM_URL")
    assert captured.err.splitlines() == ["couchgate: 1 problem(s) found"]


def _problems(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("problem:")]


async def test_check_finds_wrong_admin_credentials(
    make_gateway: MakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = await make_gateway()
    if gw.upstream.kind == "embedded":
        pytest.skip("the embedded store's admin password is made by the process itself")
    _use_settings_of(gw, monkeypatch)
    monkeypatch.setenv("COUCHGATE_UPSTREAM_PASSWORD", "not-the-password")
    assert await _cli("check") == 1
    assert _problems(capsys.readouterr().out) == [
        "problem: the upstream refused couchgate's admin credentials; fix: set "
        "COUCHGATE_UPSTREAM_USER and COUCHGATE_UPSTREAM_PASSWORD to a CouchDB server admin"
    ]


async def test_check_reaches_smtp_and_finds_it_gone(
    make_gateway: MakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    smtp = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        gw = await make_gateway(
            email_delivery="smtp",
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_tls="none",
            smtp_from="couchgate@test.invalid",
        )
        _use_settings_of(gw, monkeypatch)
        assert await _cli("check") == 0
        out = capsys.readouterr().out
        assert f"ok: SMTP at 127.0.0.1:{smtp.port} answers (EHLO ok)" in out.splitlines()
    finally:
        smtp.stop()
    assert await _cli("check") == 1
    assert _problems(capsys.readouterr().out) == [
        f"problem: SMTP at 127.0.0.1:{smtp.port} failed at connect (SMTPConnectError); "
        "fix: check COUCHGATE_SMTP_HOST and COUCHGATE_SMTP_PORT"
    ]


async def test_check_refuses_a_plain_http_cors_origin(
    make_gateway: MakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = await make_gateway(cors_origins="http://localhost:3000,http://app.example")
    _use_settings_of(gw, monkeypatch)
    assert await _cli("check") == 1
    assert _problems(capsys.readouterr().out) == [
        "problem: CORS origin http://app.example is plain http: tokens would cross the network "
        "in the clear; fix: serve the app over https and list its https origin in "
        "COUCHGATE_CORS_ORIGINS"
    ]


async def test_users_usage_shows_documents_and_quota(
    make_gateway: MakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = await make_gateway(quota_docs=50)
    device = await gw.new_device("usage@example.org")
    assert (await gw.call("PUT", "/db/notes/", device=device))[0] == 201
    docs = [{"_id": f"n{i}", "text": "x" * 100} for i in range(7)]
    status, _ = await gw.call("POST", "/db/notes/_bulk_docs", device=device, json={"docs": docs})
    assert status == 201
    _use_settings_of(gw, monkeypatch)
    assert await _cli("users", "usage", "usage@example.org", "--json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["user"], row["app"], row["docs"], row["quota_docs"]) == (
        device.user,
        "notes",
        7,
        50,
    )
    assert row["quota_bytes"] == 0 and row["bytes"] >= 0
    assert await _cli("users", "usage") == 0
    assert capsys.readouterr().out.startswith(f"{device.user}  notes  docs 7/50  bytes ")
    assert await _cli("users", "usage", "nobody@example.org") == 1


async def test_a_device_revoked_from_the_cli_loses_its_open_feed(
    make_gateway: MakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI is another process's worth of state (its own store or connection): the running
    gateway learns of the revocation from the records feed, and ends the feed."""
    gw = await make_gateway()
    _use_settings_of(gw, monkeypatch)
    device = await gw.new_device()
    assert (await gw.call("PUT", "/db/notes/", device=device))[0] == 201
    feed = await gw.session.get(
        f"{gw.url}/db/notes/_changes?feed=continuous&heartbeat=500&since=now",
        headers=device.headers,
    )
    try:
        await asyncio.wait_for(feed.content.readany(), timeout=5)
        assert await _cli("devices", "revoke", device.device) == 0
        await asyncio.wait_for(feed.content.read(), timeout=20)  # ends: EOF, not a time-out
    finally:
        feed.close()
    assert (await gw.call("GET", "/auth/me", device=device))[0] == 401
