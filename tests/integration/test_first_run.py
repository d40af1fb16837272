"""What a newcomer sees: ``couchgate serve`` says where it listens and what to do next (or, for a
log pipeline, one structured line), ``couchgate users add`` prints the link and QR code that use
its code, and every ``--help`` is written for a person."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import segno

from gateway import __version__, cli
from gateway.cli import main
from tests.harness import MakeGateway
from tests.integration.test_cli import _use_settings_of
from tests.served import Server
from tests.upstreams import free_port


@dataclass
class JsonLogServer(Server):
    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "COUCHGATE_LOG_FORMAT": "json"}


async def test_serve_says_where_it_listens_and_what_next(server: Server) -> None:
    text = server.log.read_text()
    assert f"couchgate {__version__} is ready at {server.url}/" in text
    assert f"admin dashboard  {server.url}/admin/" in text
    assert f"demo app         {server.url}/demo/" in text
    assert "couchgate users add <email>" in text
    assert text.count("is ready at") == 1


async def test_serve_with_json_logs_announces_in_one_structured_line(tmp_path: Path) -> None:
    served = JsonLogServer(tmp_path / "data", free_port())
    await served.start()
    try:
        lines = [json.loads(line) for line in served.log.read_text().splitlines() if line]
    finally:
        assert served.proc is not None
        served.proc.kill()
        await served.proc.wait()
    ready = [line for line in lines if line["message"] == "couchgate is ready"]
    assert len(ready) == 1
    assert ready[0]["url"] == served.url + "/"
    assert ready[0]["admin_url"] == served.url + "/admin/"
    assert ready[0]["demo_url"] == served.url + "/demo/"
    assert ready[0]["next_step"] == "couchgate users add <email>"


def test_the_log_format_flag_sets_the_setting() -> None:
    args = cli._parser().parse_args(["serve", "--log-format", "json"])
    assert cli._settings(args).log_format == "json"


def _qr_matrix(drawn: str) -> list[list[bool]]:
    """Read back segno's compact terminal drawing (two modules per character, dark = space)."""
    rows: list[list[bool]] = []
    for line in drawn.splitlines():
        top = [ch in " ▄" for ch in line]
        bottom = [ch in " ▀" for ch in line]
        rows += [top, bottom]
    return rows


def _expected_matrix(link: str) -> list[list[bool]]:
    qr = segno.make(link, error="m")
    return [[bool(m) for m in row] for row in qr.matrix_iter(border=2)]


@pytest.mark.parametrize("public_url", [None, "https://sync.example.org/"])
async def test_users_add_prints_the_link_and_qr_code(
    make_gateway: MakeGateway,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    public_url: str | None,
) -> None:
    gw = await make_gateway(registration="invite", public_url=public_url, port=free_port())
    _use_settings_of(gw, monkeypatch)
    base = "https://sync.example.org" if public_url else f"http://127.0.0.1:{gw.settings.port}"

    assert await asyncio.to_thread(main, ["users", "add", "dee@example.org", "--qr"]) == 0
    out = capsys.readouterr().out
    code = re.search(r"enrollment code: (\S+)", out)
    assert code
    link = f"{base}/demo/#enroll={code.group(1)}"
    assert f"link: {link}\n" in out
    drawn = out[out.index("\n", out.index("link: ")) + 1 :]
    drawn = "\n".join(line for line in drawn.splitlines() if line and not line.startswith("  ("))
    expected = _expected_matrix(link)
    assert _qr_matrix(drawn)[: len(expected)] == expected

    assert await asyncio.to_thread(main, ["users", "add", "dee@example.org", "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["link"] == f"{base}/demo/#enroll={added['enrollment_code']}"
    status, body = await gw.call(
        "POST", "/auth/enroll", json={"code": added["enrollment_code"], "device": "phone"}
    )
    assert status == 201, body


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_help_says_what_the_command_does_with_an_example() -> None:
    parsers = list(_parsers(cli._parser()))
    assert len(parsers) >= 12  # couchgate, serve, check, users (4), devices (2), admin (1)
    for parser in parsers:
        text = parser.format_help()
        assert parser.description and len(parser.description) > 30, parser.prog
        assert re.search(r"^examples?:\n  couchgate ", text, re.M), parser.prog
        assert "``" not in text and "main(argv)" not in text, parser.prog
