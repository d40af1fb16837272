"""The addresses couchgate hands to people: where it can be reached, and the enrollment link an
invitation carries (as text and as a QR code), the same from ``couchgate users add`` and from
the dashboard.

A link is built only from what an admin configured (``public_url``, or for the CLI and the
start-up banner the listening address), never from a request's ``Host`` header: a forged header
would otherwise put an attacker's site into an invitation that carries a live code.
"""

from __future__ import annotations

import io
import ipaddress

import segno

from gateway.config import Settings

# Listening on every interface: people open it on this machine as the loopback address.
_WILDCARDS = {"", "0.0.0.0", "::"}


def listening_url(settings: Settings) -> str:
    """``http://host:port`` of where ``serve`` listens, as a browser on this machine opens it."""
    host = "127.0.0.1" if settings.host in _WILDCARDS else settings.host
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"http://{host}:{settings.port}"


def public_base(settings: Settings) -> str | None:
    """``public_url`` without a trailing slash, or None when it is not configured."""
    return settings.public_url.rstrip("/") if settings.public_url else None


def site_url(settings: Settings) -> str:
    """Where people reach couchgate: ``public_url``, else the listening address."""
    return public_base(settings) or listening_url(settings)


def enroll_link(base: str, code: str) -> str:
    """The demo app with the enrollment code filled in; the code sits in the fragment, which
    browsers never send to a server."""
    return f"{base}/demo/#enroll={code}"


def qr_svg(link: str) -> str:
    """The link as an inline SVG QR code, for the dashboard."""
    return str(segno.make(link, error="m").svg_inline(scale=4, border=2))


def qr_terminal(link: str) -> str:
    """The link as a QR code drawn with block characters, for a terminal."""
    out = io.StringIO()
    segno.make(link, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()
