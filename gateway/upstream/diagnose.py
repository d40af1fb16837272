"""``couchgate check``: the diagnostic an admin runs first.

Every finding is one line: ``ok:`` (verified), ``note:`` (worth knowing, nothing broken) or
``problem:`` (something will fail; the line says how to fix it). Checks that depend on an
earlier one (the upstream's configuration needs the upstream) are skipped when it failed, so one
cause gives one problem line. Secrets are compared, never printed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import aiosmtplib
from aiocouch.exception import ForbiddenError, UnauthorizedError

from gateway.config import Settings
from gateway.config_values import env_name
from gateway.limits.quotas import BYTE_QUOTA_UNCOUNTED, byte_quota_set
from gateway.limits.rates import is_loopback
from gateway.upstream.backend import ADMIN_CALL_TIMEOUT, Backend, member_name
from gateway.upstream.member_auth import admin_headers, member_headers

Level = Literal["ok", "note", "problem"]

# CouchDB 3.x's defaults when its configuration leaves them out.
COUCHDB_MAX_HTTP_REQUEST_SIZE = 4_294_967_296
COUCHDB_MAX_DOCUMENT_SIZE = 8_000_000
SMTP_TIMEOUT_S = 10
HANDLER = {"jwt": "jwt_authentication_handler", "proxy": "proxy_authentication_handler"}


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    text: str
    fix: str = ""
    # "auth" for what decides whether the upstream accepts couchgate's members: a problem found
    # in CouchDB's configuration names the cause that a refused probe only shows.
    topic: str = ""

    def line(self) -> str:
        return f"{self.level}: {self.text}" + (f"; fix: {self.fix}" if self.fix else "")


def ok(text: str) -> Finding:
    return Finding("ok", text)


def note(text: str) -> Finding:
    return Finding("note", text)


def problem(text: str, fix: str, *, topic: str = "") -> Finding:
    return Finding("problem", text, fix, topic)


async def diagnose(backend: Backend, configured: Settings) -> list[Finding]:
    """Everything ``check`` looks at, in the order an admin would fix it. ``configured`` are the
    settings as given (``backend.settings`` point at the embedded store when there is one)."""
    settings = backend.settings
    found = [
        ok(f"configuration ({settings.upstream_auth} mode, registration {settings.registration})")
    ]
    found += _configuration_notes(configured)
    upstream = await _upstream(backend, configured)
    found += upstream
    if all(f.level != "problem" for f in upstream):
        probe = await _auth_mode(backend)
        config = await _upstream_config(backend, configured)
        if any(f.level == "problem" and f.topic == "auth" for f in config):
            probe = [f for f in probe if f.level != "problem"]  # one cause, one problem line
        found += probe + config
    found += _cors(settings)
    found += await _smtp(settings)
    return found


def mode_needs_couchdb(settings: Settings) -> bool:
    return settings.upstream_auth in HANDLER


def _configuration_notes(s: Settings) -> list[Finding]:
    out: list[Finding] = []
    if s.email_delivery == "console" and s.upstream_configured:
        out.append(
            note(
                "email_delivery=console: sign-in codes are printed on the server's terminal, "
                f"not emailed (set {env_name('email_delivery')}=smtp)"
            )
        )
    if s.public_url is None and s.email_delivery == "smtp":
        out.append(note(f"sign-in emails name no address ({env_name('public_url')} is unset)"))
    if s.metrics_token is None and not is_loopback(s.host) and s.host != "localhost":
        out.append(
            note(
                f"/metrics answers this machine only (set {env_name('metrics_token')} "
                "to scrape it from elsewhere)"
            )
        )
    return out


async def _upstream(backend: Backend, configured: Settings) -> list[Finding]:
    where = configured.upstream_url or "embedded store"
    try:
        info = await backend.server_info()
    except (UnauthorizedError, ForbiddenError):  # before OSError: they are PermissionErrors
        return [_REFUSED]
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return [
            problem(
                f"the upstream at {where} is not reachable ({type(exc).__name__})",
                f"start CouchDB or correct {env_name('upstream_url')}",
            )
        ]
    vendor = info.get("vendor")
    name = vendor.get("name", "?") if isinstance(vendor, dict) else "?"
    out = [ok(f"upstream {name} {info.get('version', '?')} at {where}")]
    if name == "PouchDB authors" and byte_quota_set(configured):
        out.append(problem(BYTE_QUOTA_UNCOUNTED, f"unset {env_name('quota_bytes')}"))
    if mode_needs_couchdb(configured) and name == "PouchDB authors":
        out.append(
            problem(
                f"upstream_auth={configured.upstream_auth} needs Apache CouchDB 3.x; "
                "pouchdb-server has neither JWT nor proxy authentication",
                f"use CouchDB, or {env_name('upstream_auth')}=admin",
            )
        )
    try:
        await backend.ensure_records()
    except (UnauthorizedError, ForbiddenError):
        out.append(_REFUSED)
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
        out.append(
            problem(
                f"the records database could not be set up ({type(exc).__name__})",
                f"check that {env_name('records_db')} is a database couchgate may create",
            )
        )
    else:
        out.append(
            ok(f"admin credentials accepted, records database {backend.settings.records_db!r}")
        )
    return out


_REFUSED = problem(
    "the upstream refused couchgate's admin credentials",
    f"set {env_name('upstream_user')} and {env_name('upstream_password')} "
    "to a CouchDB server admin",
)


async def _auth_mode(backend: Backend) -> list[Finding]:
    """A request as a member, the way the proxy sends them: does the upstream see that member?"""
    settings = backend.settings
    mode = settings.upstream_auth
    if mode == "admin":
        return []
    probe = member_name("couchgatecheck")
    headers = {**member_headers(settings, probe, int(time.time())), "Accept": "application/json"}
    async with backend.http.get(
        backend.url / "_session", headers=headers, timeout=ADMIN_CALL_TIMEOUT
    ) as resp:
        body = await resp.json(content_type=None) if resp.status == 200 else {}
    seen = body.get("userCtx", {}).get("name") if isinstance(body, dict) else None
    if seen != probe:
        return [
            problem(
                f"the upstream does not accept {mode} authentication",
                f"add {{chttpd_auth, {HANDLER[mode]}}} to [chttpd] authentication_handlers "
                f"and {_SECRET_FIX[mode]}",
            )
        ]
    return [ok(f"{mode} authentication accepted by the upstream")]


_SECRET_FIX = {
    "jwt": "the same secret, base64, in [jwt_keys] hmac:_default",
    "proxy": "the same secret in [chttpd_auth] secret",
}


async def _vendor(backend: Backend) -> str:
    vendor = (await backend.server_info()).get("vendor")
    name = vendor.get("name") if isinstance(vendor, dict) else None
    return "pouchdb-server" if name == "PouchDB authors" else str(name or "unknown")


async def _node_config(backend: Backend) -> dict[str, Any] | None:
    """CouchDB's configuration as its admin sees it; None where there is none to read."""
    async with backend.http.get(
        backend.url / "_node" / "_local" / "_config",
        headers={**admin_headers(backend.settings), "Accept": "application/json"},
        timeout=ADMIN_CALL_TIMEOUT,
    ) as resp:
        if resp.status != 200:
            return None
        try:
            body = await resp.json(content_type=None)
        except ValueError:
            return None
    return body if isinstance(body, dict) and isinstance(body.get("chttpd"), dict) else None


async def _upstream_config(backend: Backend, configured: Settings) -> list[Finding]:
    config = await _node_config(backend)
    if config is None:
        kind = await _vendor(backend) if configured.upstream_configured else "the embedded store"
        return [
            note(
                f"the upstream ({kind}) does not show its configuration at "
                "/_node/_local/_config: its auth and size settings were not compared"
            )
        ]

    def get(section: str, key: str) -> str | None:
        values = config.get(section)
        value = values.get(key) if isinstance(values, dict) else None
        return value if isinstance(value, str) else None

    settings = backend.settings
    out: list[Finding] = []
    handlers = get("chttpd", "authentication_handlers") or ""
    mode = settings.upstream_auth
    if mode in HANDLER and HANDLER[mode] not in handlers:
        out.append(
            problem(
                f"CouchDB's [chttpd] authentication_handlers lack {HANDLER[mode]}",
                f"add {{chttpd_auth, {HANDLER[mode]}}} (deploy/couchdb/local.ini)",
                topic="auth",
            )
        )
    if mode == "jwt":
        out += _jwt_key(
            settings, get("jwt_keys", f"hmac:{settings.upstream_jwt_kid or '_default'}")
        )
    if mode == "proxy":
        out += _proxy_secret(
            settings, get("chttpd_auth", "secret"), get("chttpd_auth", "proxy_use_secret")
        )
    if mode == "admin":
        out.append(
            note(
                "upstream_auth=admin in front of CouchDB: proxied requests run as the server "
                f"admin, couchgate's checks are the only guard ({env_name('upstream_auth')}=jwt "
                "lets CouchDB enforce each database's members too)"
            )
        )
    out += _sizes(
        settings, get("chttpd", "max_http_request_size"), get("couchdb", "max_document_size")
    )
    if (get("chttpd", "enable_cors") or "").lower() == "true":
        out.append(
            note(
                "CouchDB answers CORS itself ([chttpd] enable_cors = true); couchgate drops "
                "those headers and answers for its own origins, so it can be turned off"
            )
        )
    return out


def _jwt_key(settings: Settings, stored: str | None) -> list[Finding]:
    name = f"hmac:{settings.upstream_jwt_kid or '_default'}"
    fix = (
        f"set [jwt_keys] {name} to the base64 of {env_name('upstream_jwt_secret')} "
        "(deploy/couchdb/jwt-entrypoint.sh does this from the environment)"
    )
    if stored is None:
        return [problem(f"CouchDB has no [jwt_keys] {name}", fix, topic="auth")]
    try:
        key = base64.b64decode(stored.strip(), validate=True)
    except (binascii.Error, ValueError):
        return [problem(f"CouchDB's [jwt_keys] {name} is not base64", fix, topic="auth")]
    assert settings.upstream_jwt_secret is not None  # Settings requires it in jwt mode
    if not hmac.compare_digest(key, settings.upstream_jwt_secret.encode()):
        return [
            problem(f"CouchDB's [jwt_keys] {name} is not couchgate's JWT secret", fix, topic="auth")
        ]
    return [ok(f"CouchDB's [jwt_keys] {name} matches couchgate's JWT secret")]


def _proxy_secret(settings: Settings, secret: str | None, use_secret: str | None) -> list[Finding]:
    assert settings.upstream_proxy_secret is not None  # Settings requires it in proxy mode
    out: list[Finding] = []
    if secret is None or not hmac.compare_digest(
        secret.encode(), settings.upstream_proxy_secret.encode()
    ):
        out.append(
            problem(
                "CouchDB's [chttpd_auth] secret is not couchgate's proxy secret",
                f"set it to {env_name('upstream_proxy_secret')} (COUCHDB_SECRET in the image)",
                topic="auth",
            )
        )
    if (use_secret or "false").lower() != "true":
        out.append(
            problem(
                "CouchDB takes X-Auth-CouchDB-UserName without its token: whoever reaches "
                "CouchDB can act as any user",
                "set [chttpd_auth] proxy_use_secret = true",
                topic="auth",
            )
        )
    if not out:
        out.append(ok("CouchDB's proxy authentication secret matches couchgate's"))
    return out


def _sizes(settings: Settings, http_raw: str | None, doc_raw: str | None) -> list[Finding]:
    ours = settings.max_request_size
    http = _int(http_raw, COUCHDB_MAX_HTTP_REQUEST_SIZE)
    doc = _int(doc_raw, COUCHDB_MAX_DOCUMENT_SIZE)
    out: list[Finding] = []
    if http < ours:
        out.append(
            problem(
                f"CouchDB refuses requests over {http} bytes, couchgate passes up to {ours}",
                f"raise [chttpd] max_http_request_size to {ours} or lower "
                f"{env_name('max_request_size')}",
            )
        )
    if doc < ours:
        out.append(
            problem(
                f"CouchDB refuses documents over {doc} bytes, couchgate passes up to {ours} "
                "(encrypted apps seal attachments inside their documents)",
                f"raise [couchdb] max_document_size to {ours} or lower "
                f"{env_name('max_request_size')}",
            )
        )
    if not out:
        out.append(
            ok(
                f"request sizes: couchgate reads up to {ours} bytes; CouchDB takes requests up "
                f"to {http} and documents up to {doc}"
            )
        )
    return out


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _cors(settings: Settings) -> list[Finding]:
    if not settings.cors_origins:
        return [
            note(
                f"no browser origins are allowed ({env_name('cors_origins')}): web apps on "
                "another origin cannot sync"
            )
        ]
    insecure = [
        o
        for o in settings.cors_origins
        if o.startswith("http://") and o.split("//", 1)[1].split(":")[0] not in _LOCAL_HOSTS
    ]
    if insecure:
        return [
            problem(
                f"CORS origin {insecure[0]} is plain http: tokens would cross the network "
                "in the clear",
                f"serve the app over https and list its https origin in {env_name('cors_origins')}",
            )
        ]
    return [ok(f"CORS for {', '.join(settings.cors_origins)}")]


_LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]"}


async def _smtp(settings: Settings) -> list[Finding]:
    """Connect and say EHLO (then STARTTLS and log in, as sending would), sending no mail."""
    if settings.email_delivery != "smtp":
        return []
    assert settings.smtp_host is not None  # Settings requires it for smtp delivery
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    client = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        use_tls=settings.smtp_tls == "tls",
        start_tls=False,
        timeout=SMTP_TIMEOUT_S,
    )
    step, done = "connect", []
    try:
        await client.connect()
        step = "EHLO"
        await client.ehlo()
        done.append(step)
        if settings.smtp_tls == "starttls":
            step = "STARTTLS"
            await client.starttls()
            done.append(step)
        if settings.smtp_user and settings.smtp_password:
            step = "login"
            await client.login(settings.smtp_user, settings.smtp_password)
            done.append(step)
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        client.close()
        return [
            problem(
                f"SMTP at {where} failed at {step} ({type(exc).__name__})",
                _SMTP_FIX.get(step, f"check {env_name('smtp_host')} and {env_name('smtp_port')}"),
            )
        ]
    return [ok(f"SMTP at {where} answers ({', '.join(done)} ok)")]


_SMTP_FIX = {
    "STARTTLS": f"set {env_name('smtp_tls')} to tls (port 465) or none, as the server offers",
    "login": f"correct {env_name('smtp_user')} and {env_name('smtp_password')}",
}
