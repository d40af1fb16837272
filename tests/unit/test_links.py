"""Where people are told couchgate is: public_url when configured, else the listening address as
a browser on this machine opens it."""

from __future__ import annotations

import pytest

from gateway.web import links
from tests.harness import gateway_settings


@pytest.mark.parametrize(
    ("host", "public_url", "expected"),
    [
        ("127.0.0.1", None, "http://127.0.0.1:5980"),
        ("0.0.0.0", None, "http://127.0.0.1:5980"),
        ("::", None, "http://127.0.0.1:5980"),
        ("::1", None, "http://[::1]:5980"),
        ("sync.local", None, "http://sync.local:5980"),
        ("0.0.0.0", "https://sync.example.org/", "https://sync.example.org"),
        ("0.0.0.0", "https://example.org/couchgate", "https://example.org/couchgate"),
    ],
)
def test_site_url(host: str, public_url: str | None, expected: str) -> None:
    settings = gateway_settings(None, host=host, public_url=public_url, data_dir="unused")
    assert links.site_url(settings) == expected
    assert links.enroll_link(links.site_url(settings), "AB12-CD34") == (
        f"{expected}/demo/#enroll=AB12-CD34"
    )
    assert (links.public_base(settings) is None) == (public_url is None)
