"""``couchgate admin set-password`` stores an Argon2id hash in the records database, which the
dashboard of a running gateway (any replica) then accepts."""

from __future__ import annotations

import asyncio
import io

import pytest

from gateway import keys
from gateway.cli import main
from gateway.dashboard.records import AdminRecords
from tests.harness import MakeGateway
from tests.integration.test_cli import _use_settings_of


async def test_set_password_from_stdin(
    make_gateway: MakeGateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = await make_gateway()
    _use_settings_of(gw, monkeypatch)
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert await asyncio.to_thread(main, ["admin", "set-password", "--stdin"]) == 1
    assert "at least 12 characters" in capsys.readouterr().err

    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert await asyncio.to_thread(main, ["admin", "set-password", "--stdin"]) == 0
    out = capsys.readouterr()
    assert "password" not in out.err and "a long enough" not in out.out

    stored = await AdminRecords(gw.app[keys.BACKEND].records).password_hash()
    assert stored is not None and stored.startswith("$argon2id$")
    status, _ = await gw.call(
        "POST",
        "/admin/login",
        data={"password": "a long enough password"},
        headers={"Origin": gw.url},
        allow_redirects=False,
    )
    assert status == 303
    status, body = await gw.call(
        "POST",
        "/admin/login",
        data={"password": "wrong password!!"},
        headers={"Origin": gw.url},
        allow_redirects=False,
    )
    assert status == 401 and "not the admin password" in body


async def test_guessing_the_admin_password_is_rate_limited_per_client_ip(
    make_gateway: MakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = await make_gateway(ip_signins_per_hour=3)
    _use_settings_of(gw, monkeypatch)
    monkeypatch.setattr("sys.stdin", io.StringIO("the real admin password\n"))
    assert await asyncio.to_thread(main, ["admin", "set-password", "--stdin"]) == 0

    async def attempt(password: str) -> int:
        status, _ = await gw.call(
            "POST",
            "/admin/login",
            data={"password": password},
            headers={"Origin": gw.url},
            allow_redirects=False,
        )
        return status

    assert [await attempt(f"guess number {i}") for i in range(3)] == [401, 401, 401]
    # The budget is spent: even the right password waits now, and nothing is verified.
    assert await attempt("the real admin password") == 429
    # A sign-in form is small: a large one is refused before it is read.
    status, body = await gw.call(
        "POST",
        "/admin/login",
        data={"password": "x" * 20000},
        headers={"Origin": gw.url},
        allow_redirects=False,
    )
    assert (status, body["error"]) == (413, "too_large")


async def test_the_user_list_is_paged(
    make_gateway: MakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.dashboard.session import COOKIE
    from gateway.dashboard.views import USERS_PER_PAGE

    gw = await make_gateway()
    _use_settings_of(gw, monkeypatch)
    monkeypatch.setattr("sys.stdin", io.StringIO("the real admin password\n"))
    assert await asyncio.to_thread(main, ["admin", "set-password", "--stdin"]) == 0
    uids = [(await gw.enrollment_code())[0] for _ in range(USERS_PER_PAGE + 3)]
    async with gw.session.post(
        gw.url + "/admin/login",
        data={"password": "the real admin password"},
        headers={"Origin": gw.url},
        allow_redirects=False,
    ) as r:
        assert r.status == 303
        cookie = {"Cookie": f"{COOKIE}={r.cookies[COOKIE].value}"}
    pages = []
    for page in (0, 1):
        async with gw.session.get(f"{gw.url}/admin/?page={page}", headers=cookie) as r:
            assert r.status == 200
            pages.append(await r.text())
    shown = [[uid for uid in uids if uid in html] for html in pages]
    assert len(shown[0]) == USERS_PER_PAGE and len(shown[1]) == 3
    assert not set(shown[0]) & set(shown[1])
    assert "page 1 of 2" in pages[0] and "page 2 of 2" in pages[1]
