"""``couchgate`` commands through ``main(argv)``, against the same upstream a running gateway uses
(or the same embedded store directory), and checked through that gateway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from gateway.cli import main
from gateway.config import env_name
from tests.harness import GatewayHarness

MakeGateway = Callable[..., Awaitable[GatewayHarness]]


def _use_settings_of(gw: GatewayHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the CLI at what the gateway uses, through the environment as an admin would."""
    for name in gw.settings.redacted():
        monkeypatch.delenv(env_name(name), raising=False)
        real = getattr(gw.settings, name)
        if real is None or real == ():
            continue
        monkeypatch.setenv(env_name(name), ",".join(real) if isinstance(real, tuple) else str(real))


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
    assert set(added) == {"user", "enrollment_code"}

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
async def test_command_errors_are_one_line_and_exit_2(
    make_gateway: MakeGateway,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    message: str,
) -> None:
    _use_settings_of(await make_gateway(), monkeypatch)
    assert await _cli(*argv) == 2
    assert capsys.readouterr().err.splitlines() == [message]


async def test_check_reports_what_it_verified(
    make_gateway: MakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use_settings_of(await make_gateway(), monkeypatch)
    assert await _cli("check") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["ok", "ok", "ok"]
    assert "admin credentials accepted" in lines[2]


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
    assert main(["check"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        "couchgate: the upstream at http://127.0.0.1:9 is not reachable"
    )
