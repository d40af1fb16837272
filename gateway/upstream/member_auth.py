"""What a proxied request carries upstream to act as one member of one database.

Pure functions, so the exact claims, header names and HMACs are unit-tested even where no
CouchDB with JWT or proxy authentication can run.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac

import jwt

from gateway.config import Settings

JWT_LIFETIME_S = 60
# A token is made once per member per window and reused within it (signing costs tens of
# microseconds, on every proxied request); issued at the window's start, it still has at least
# JWT_LIFETIME_S - JWT_REUSE_S seconds to live when last used.
JWT_REUSE_S = 30
PROXY_USER_HEADER = "X-Auth-CouchDB-UserName"
PROXY_ROLES_HEADER = "X-Auth-CouchDB-Roles"
PROXY_TOKEN_HEADER = "X-Auth-CouchDB-Token"


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def jwt_claims(member: str, now: int) -> dict[str, object]:
    """A short-lived token: CouchDB enforces ``_security`` for ``sub``; ``exp`` is required."""
    return {"sub": member, "iat": now, "exp": now + JWT_LIFETIME_S, "_couchdb.roles": []}


def jwt_header(secret: str, kid: str | None, member: str, now: int) -> str:
    return _signed(secret, kid, member, now - now % JWT_REUSE_S)


@functools.lru_cache(maxsize=4096)
def _signed(secret: str, kid: str | None, member: str, issued: int) -> str:
    headers = {"kid": kid} if kid else None
    token = jwt.encode(jwt_claims(member, issued), secret, algorithm="HS256", headers=headers)
    return "Bearer " + token


def proxy_token(secret: str, member: str) -> str:
    """``hex(HMAC(secret, user name))``: CouchDB 3.3+ checks it with its first hash, sha256."""
    return hmac.new(secret.encode(), member.encode(), hashlib.sha256).hexdigest()


def member_headers(settings: Settings, member: str, now: int) -> dict[str, str]:
    """Headers that make the upstream see ``member`` (or couchgate's admin, in admin mode)."""
    if settings.upstream_auth == "jwt":
        assert settings.upstream_jwt_secret is not None  # checked by Settings
        return {
            "Authorization": jwt_header(
                settings.upstream_jwt_secret, settings.upstream_jwt_kid, member, now
            )
        }
    if settings.upstream_auth == "proxy":
        assert settings.upstream_proxy_secret is not None  # checked by Settings
        return {
            PROXY_USER_HEADER: member,
            PROXY_ROLES_HEADER: "",
            PROXY_TOKEN_HEADER: proxy_token(settings.upstream_proxy_secret, member),
        }
    return admin_headers(settings)


def admin_headers(settings: Settings) -> dict[str, str]:
    if settings.upstream_user is None or settings.upstream_password is None:
        return {}
    return {"Authorization": basic_header(settings.upstream_user, settings.upstream_password)}
