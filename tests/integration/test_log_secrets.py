"""No log line, at any level, carries a token, code or email address, whatever a client sends
(issue 9, finding 6): malformed requests go over a raw socket, everything logged at DEBUG is
read back, in-process on every upstream and from a real ``couchgate serve``."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gateway.ops.logs import redact
from tests.harness import GatewayHarness
from tests.logcapture import captured_logs
from tests.rawhttp import exchange, status_of
from tests.served import Server
from tests.upstreams import free_port

EMAIL = "secret.person@example.org"
CODE = "ABCD-EFGH-2345-WXYZ"


def malformed_requests(token: str) -> list[bytes]:
    """The malformed requests of the issue, and their cousins, each carrying secrets."""
    basic = base64.b64encode(f"u:{token}".encode()).decode()
    host = b"Host: gw\r\n"
    lines = [
        f"GET /db/app/ HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\x01\r\n\r\n",
        f"GET /db/app/ HTTP/1.1\r\nHost: gw\r\nAuthorization Bearer: {token}\r\n\r\n",
        f"GET /db/app/ HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}{'A' * 9000}\r\n\r\n",
        f"GET /db/app/ HTTP/1.1\r\nHost: gw\r\nAuthorization: Basic {basic}\x7f\r\n\r\n",
        f"GET /db/app/?token={token} HTTP/1.1 x\r\nHost: gw\r\n\r\n",
        f"GET /db/app/?token={token}\x00 HTTP/1.1\r\nHost: gw\r\n\r\n",
        f"GET /db/app/?token={token}{'B' * 9000} HTTP/1.1\r\nHost: gw\r\n\r\n",
        f"POST /auth/enroll?code={CODE} HTTP/1.1 x\r\nHost: gw\r\n\r\n",
        f"GET /auth/me HTTP/1.1\r\nHost: gw\r\nX-Email: {EMAIL}\x01\r\n\r\n",
        f"GET /auth/me HTTP/1.1\r\nHost: gw\r\nX-Email {EMAIL}: {token}\r\n\r\n",
        f"G\x00T /db/app/ HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\r\n",
        f"GET /db/app/ HTTP/9.9\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\r\n",
    ]
    out = [line.encode("latin-1") for line in lines]
    # A body that does not match its framing, with secrets inside.
    out.append(
        b"POST /auth/token HTTP/1.1\r\n"
        + host
        + b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n"
        + f'{{"code":"{CODE}","challenge":"{token}"}}'.encode()
    )
    return out


def assert_clean(text: str, token: str) -> None:
    secret = token.rsplit(".", 1)[1]
    for needle in (token, secret, EMAIL, CODE, base64.b64encode(f"u:{token}".encode()).decode()):
        assert needle not in text, f"{needle[:12]}... was logged:\n{text[-3000:]}"
    assert "Traceback" not in text, text[-3000:]
    assert " ERROR " not in text, text[-3000:]


async def test_malformed_requests_log_no_secret_and_no_traceback(gateway: GatewayHarness) -> None:
    device = await gateway.new_device(EMAIL)
    with captured_logs(gateway.settings) as logs:
        for raw in malformed_requests(device.token):
            answer = await exchange(gateway.server.port or 0, raw)
            assert status_of(answer) == 400, answer[:200]
        # ... and well-formed ones with secrets where they do not belong.
        for path in (f"/db/app/?token={device.token}", f"/auth/me?email={EMAIL}&code={CODE}"):
            status, _ = await gateway.call("GET", path, device=device)
            assert status in (200, 201, 400, 404), status
        status, _ = await gateway.call("POST", "/auth/enroll", json={"code": CODE, "device": EMAIL})
        assert status == 401
        assert (await gateway.call("GET", "/healthz"))[0] == 200
    text = logs.getvalue()
    assert "malformed request refused" in text  # they were logged, as one quiet line each
    assert_clean(text, device.token)


def test_redaction_keeps_what_is_not_secret() -> None:
    line = "GET endpoint_changes 200 1234 5.0ms rid=0123abcd"
    assert redact(line) == line
    assert redact("Authorization: Bearer cg1.aaaa.bbbb.cccc") == "Authorization: ***"
    assert "x@example.org" not in redact("sent to x@example.org")


class DebugServer(Server):
    """``couchgate serve`` logging everything, as an admin debugging it would run it."""

    log_format = "text"

    @property
    def env(self) -> dict[str, str]:
        return {
            **super().env,
            "COUCHGATE_LOG_LEVEL": "DEBUG",
            "COUCHGATE_LOG_FORMAT": self.log_format,
        }


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_serve_at_debug_logs_no_secret(tmp_path: Path, log_format: str) -> None:
    server = DebugServer(tmp_path / "data", free_port())
    server.log_format = log_format
    await server.start()
    try:
        device = await server.enroll()
        for raw in malformed_requests(device.token):
            assert status_of(await exchange(server.port, raw)) == 400
    finally:
        await server.terminate()
    text = server.log.read_text(errors="replace")
    assert "malformed request refused" in text
    assert_clean(text, device.token)
