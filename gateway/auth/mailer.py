"""Delivery of one-time sign-in codes: SMTP for real use, the console for development.

The console mailer writes to the terminal, not to the logs: codes never go into a log line.
"""

from __future__ import annotations

import sys
from email.message import EmailMessage
from typing import Protocol, TextIO

import aiosmtplib

from gateway.config import Settings

SUBJECT = "Your sign-in code"


class Mailer(Protocol):
    async def send_code(self, to: str, code: str) -> None: ...


def code_message(sender: str, to: str, code: str, service_url: str | None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = f"{SUBJECT}: {code}"
    where = f" at {service_url}" if service_url else ""
    msg.set_content(
        f"Your code to sign in{where} is:\n\n    {code}\n\n"
        "It works once, for 10 minutes. If you did not ask for it, ignore this message.\n"
    )
    return msg


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host is not None and settings.smtp_from is not None
        self._settings = settings

    async def send_code(self, to: str, code: str) -> None:
        s = self._settings
        assert s.smtp_host is not None and s.smtp_from is not None
        await aiosmtplib.send(
            code_message(s.smtp_from, to, code, s.public_url),
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_user,
            password=s.smtp_password,
            use_tls=s.smtp_tls == "tls",
            start_tls=s.smtp_tls == "starttls",
            timeout=30,
        )


class ConsoleMailer:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send_code(self, to: str, code: str) -> None:
        stream = self._stream or sys.stderr
        print(f"couchgate (console email) sign-in code for {to}: {code}", file=stream, flush=True)


def make_mailer(settings: Settings) -> Mailer:
    if settings.email_delivery == "smtp":
        return SmtpMailer(settings)
    return ConsoleMailer()
