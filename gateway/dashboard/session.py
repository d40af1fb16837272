"""Who may use the dashboard: the admin session cookie, and the CSRF checks on every form.

The session is a cookie signed with the gateway's secret keys (itsdangerous; the newest key signs,
every key verifies), HttpOnly, SameSite=Strict, Secure behind an https ``public_url``, and it
expires. It carries a per-session CSRF token and a fingerprint of the current password hash, so
setting a new admin password signs every open session out.

A form post must pass two independent checks: the browser's own ``Sec-Fetch-Site`` / ``Origin``
headers name this site (what datasette does), and the form carries the session's CSRF token
(what protects older browsers and anything that strips those headers).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer
from yarl import URL

from gateway import keys
from gateway.dashboard.records import AdminRecords
from gateway.errors import Forbidden

COOKIE = "couchgate_admin"
COOKIE_PATH = "/admin/"
SESSION_TTL_S = 8 * 3600
_SALT = "couchgate.admin-session"


@dataclass(frozen=True, slots=True)
class AdminSession:
    csrf: str


def _serializer(request: web.Request) -> URLSafeTimedSerializer:
    secret_keys = request.config_dict[keys.SETTINGS].secret_keys
    return URLSafeTimedSerializer(list(reversed(secret_keys)), salt=_SALT)


def _password_mark(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def own_origin(request: web.Request) -> str:
    """This site's origin: from ``public_url`` behind a proxy, else from the request itself."""
    public = request.config_dict[keys.SETTINGS].public_url
    if public:
        url = URL(public)
        return str(url.origin())
    return f"{request.scheme}://{request.host}"


def _secure(request: web.Request) -> bool:
    public = request.config_dict[keys.SETTINGS].public_url
    return bool(public and public.startswith("https://"))


async def current(request: web.Request) -> AdminSession | None:
    """The admin session of this request, or None (no cookie, bad signature, expired, or the
    password changed since)."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(request).loads(raw, max_age=SESSION_TTL_S)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    csrf, mark = data.get("csrf"), data.get("pw")
    if not isinstance(csrf, str) or not isinstance(mark, str):
        return None
    password_hash = await AdminRecords(request.config_dict[keys.BACKEND].records).password_hash()
    if password_hash is None or not hmac.compare_digest(mark, _password_mark(password_hash)):
        return None
    return AdminSession(csrf)


def start(request: web.Request, response: web.StreamResponse, password_hash: str) -> None:
    """Sign the admin in: a fresh session (and CSRF token) on ``response``."""
    value = _serializer(request).dumps(
        {"csrf": secrets.token_urlsafe(32), "pw": _password_mark(password_hash)}
    )
    response.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_TTL_S,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )


def end(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path=COOKIE_PATH)


def check_same_site(request: web.Request) -> None:
    """Refuse a state-changing request that a browser says came from another site.

    At least one of the two headers must be there: every browser that sends cookies with a
    SameSite attribute sends ``Origin`` on a form post.
    """
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site is not None and site != "same-origin":
        raise Forbidden("cross-site request refused")
    if origin is not None and origin != own_origin(request):
        raise Forbidden("cross-site request refused")
    if site is None and origin is None:
        raise Forbidden("request without Origin refused")


async def check_form(request: web.Request, session: AdminSession) -> dict[str, str]:
    """The posted form, once it passed both CSRF checks."""
    check_same_site(request)
    form = await request.post()
    token = form.get("csrf_token")
    if not isinstance(token, str) or not hmac.compare_digest(token, session.csrf):
        raise Forbidden("missing or wrong CSRF token")
    return {k: v for k, v in form.items() if isinstance(v, str)}
