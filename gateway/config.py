"""Typed settings, read once at start-up.

Layers, later wins: the defaults below < a TOML file (``--config``) < ``COUCHGATE_*`` environment
variables < command-line flags. Every field's type annotation drives its parsing, so adding a
setting is one line here and nothing else; a bad value stops start-up with a :class:`ConfigError`
that names the setting.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from gateway.config_values import AppLimits, ConfigError, env_name, parse

UpstreamAuth = Literal["admin", "jwt", "proxy"]
Registration = Literal["open", "allowlist", "invite"]
EmailDelivery = Literal["smtp", "console"]
SmtpTls = Literal["starttls", "tls", "none"]
LogFormat = Literal["text", "json"]

APP_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
MIN_SECRET_LENGTH = 32


def _doc(text: str, *, secret: bool = False) -> dict[str, Any]:
    return {"help": text, "secret": secret}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything couchgate can be told. Frozen: read once, passed down, never mutated."""

    upstream_url: str | None = field(
        default=None,
        metadata=_doc(
            "CouchDB base URL, e.g. http://127.0.0.1:5984; unset, couchgate serves its own "
            "embedded store (SQLite, in data_dir)"
        ),
    )
    data_dir: str | None = field(
        default=None,
        metadata=_doc(
            "Directory of the embedded store's data (no upstream_url); default: the user's data "
            "directory, e.g. ~/.local/share/couchgate"
        ),
    )
    upstream_user: str | None = field(default=None, metadata=_doc("CouchDB admin user name"))
    upstream_password: str | None = field(
        default=None, metadata=_doc("CouchDB admin password", secret=True)
    )
    upstream_auth: UpstreamAuth = field(
        default="admin",
        metadata=_doc(
            "How proxied requests authenticate upstream: admin (Basic as the service admin; "
            "pouchdb-server), jwt (HS256 token per user; CouchDB 3.x) or proxy "
            "(CouchDB proxy authentication)"
        ),
    )
    upstream_jwt_secret: str | None = field(
        default=None,
        metadata=_doc(
            "HS256 secret shared with CouchDB's [jwt_keys] (upstream_auth=jwt)", secret=True
        ),
    )
    upstream_jwt_kid: str | None = field(
        default=None, metadata=_doc("Key id put in the JWT header (jwt mode); CouchDB's hmac:<kid>")
    )
    upstream_proxy_secret: str | None = field(
        default=None,
        metadata=_doc("CouchDB's [chttpd_auth] secret for proxy authentication", secret=True),
    )
    records_db: str = field(
        default="couchgate", metadata=_doc("Upstream database for couchgate's own records")
    )
    secret_keys: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "Signing keys, newest first, comma-separated, each at least 32 characters; "
            "older keys still verify so keys can rotate",
            secret=True,
        ),
    )
    email_pepper: str | None = field(
        default=None,
        metadata=_doc(
            "Key of the HMAC that stands in for email addresses; defaults to one derived from "
            "the oldest secret key. Set it explicitly before rotating secret keys",
            secret=True,
        ),
    )
    public_url: str | None = field(
        default=None, metadata=_doc("URL people reach couchgate at (used in emails and links)")
    )
    host: str = field(default="127.0.0.1", metadata=_doc("Address to listen on"))
    port: int = field(default=5980, metadata=_doc("Port to listen on"))
    registration: Registration = field(
        default="invite",
        metadata=_doc(
            "Who may create an account by email code: open (anyone), allowlist (addresses "
            "or @domains in COUCHGATE_ALLOWLIST), invite (only accounts an admin added)"
        ),
    )
    allowlist: tuple[str, ...] = field(
        default=(),
        metadata=_doc("Addresses or @domains allowed to register (registration=allowlist)"),
    )
    email_delivery: EmailDelivery = field(
        default="console",
        metadata=_doc("How sign-in codes are sent: smtp, or console (printed; development only)"),
    )
    smtp_host: str | None = field(default=None, metadata=_doc("SMTP server host"))
    smtp_port: int = field(default=587, metadata=_doc("SMTP server port"))
    smtp_tls: SmtpTls = field(
        default="starttls", metadata=_doc("SMTP transport security: starttls, tls or none")
    )
    smtp_user: str | None = field(default=None, metadata=_doc("SMTP user name"))
    smtp_password: str | None = field(default=None, metadata=_doc("SMTP password", secret=True))
    smtp_from: str | None = field(default=None, metadata=_doc("Sender address of sign-in emails"))
    cors_origins: tuple[str, ...] = field(
        default=(), metadata=_doc("Origins allowed to call couchgate from a browser (exact match)")
    )
    max_request_size: int = field(
        default=64 * 1024 * 1024,
        metadata=_doc(
            "Largest request body couchgate reads to check it (_bulk_docs, doc PUT), bytes"
        ),
    )
    max_import_size: int = field(
        default=16 * 1024 * 1024 * 1024,
        metadata=_doc(
            "Largest archive POST /account/api/import reads, bytes, counted after inflating a "
            "gzip body; past it: 413"
        ),
    )
    apps: tuple[str, ...] = field(
        default=("*",),
        metadata=_doc("Allowed app names, comma-separated; * and ? match as in shell patterns"),
    )
    plaintext_apps: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "Apps whose documents may be stored unencrypted (encryption = off), as patterns like "
            "COUCHGATE_APPS; every other app requires the ep1 envelope (encryption = required)"
        ),
    )
    quota_bytes: int = field(
        default=0,
        metadata=_doc(
            "Most bytes one user may store in one app's database (CouchDB's sizes.external); "
            "0: no quota. A write past it is refused with 403 forbidden"
        ),
    )
    quota_docs: int = field(
        default=0,
        metadata=_doc("Most documents one user may keep in one app's database; 0: no quota"),
    )
    device_requests_per_minute: int = field(
        default=1200,
        metadata=_doc(
            "Requests one device may make per minute, over all its apps (a token bucket that "
            "holds five minutes' worth, per replica; an app's own limit applies to its "
            "requests). The replication protocol's batches (_changes, _revs_diff, _bulk_get, "
            "_bulk_docs, _all_docs, _local checkpoints) count a quarter each, so a first sync "
            "at full speed never meets it; past it: 429 with Retry-After. 0: no limit"
        ),
    )
    feeds_per_device: int = field(
        default=20,
        metadata=_doc(
            "Live feeds one device may hold open at once (per replica); past it: 429. 0: no limit"
        ),
    )
    feed_multiplexing: bool = field(
        default=True,
        metadata=_doc(
            "Hold idle live feeds in couchgate (one _db_updates watch per process, one upstream "
            "read per change) instead of one upstream request each; off: every feed forwarded"
        ),
    )
    feeds_per_user: int = field(
        default=50,
        metadata=_doc(
            "Live feeds one user may hold open at once over all their devices and every replica "
            "(each feed holds a lease in the records database, renewed while it lives: a "
            "replica that dies frees its feeds' places within 90 s); past it: 429. 0: no limit"
        ),
    )
    devices_per_user: int = field(
        default=50,
        metadata=_doc(
            "Devices one user may have signed in at once; past it, signing in another is "
            "refused with 403 until one is revoked. 0: no limit"
        ),
    )
    max_live_feeds: int = field(
        default=0,
        metadata=_doc(
            "Live feeds this process holds open at most, over all users; past it: 503 with "
            "Retry-After. 0: derived from the open-file limit (RLIMIT_NOFILE, raised to its "
            "hard limit at start), which also bounds every other request"
        ),
    )
    idle_timeout: float = field(
        default=30.0,
        metadata=_doc(
            "Seconds a connection may stay open without a whole request (silent, or headers "
            "trickling in), and a request body may go without a byte arriving; then it is "
            "closed. Set a reverse proxy's idle keep-alive to the upstream below this"
        ),
    )
    apps_per_user: int = field(
        default=20,
        metadata=_doc(
            "Apps (upstream databases) one user may have; past it, provisioning another is "
            "refused with 403. 0: no limit"
        ),
    )
    shares_per_user: int = field(
        default=100,
        metadata=_doc("Live share links one user may have at once; past it: 403. 0: no limit"),
    )
    share_max_bytes: int = field(
        default=256 * 1024,
        metadata=_doc("Largest sealed copy a share link may hold, bytes; past it: 413"),
    )
    share_fetches_per_minute: int = field(
        default=30,
        metadata=_doc(
            "Requests for shared pages and sealed copies (/s/*) one client IP may make per minute "
            "(per replica); past it: 429 with Retry-After. 0: no limit"
        ),
    )
    address_signins_per_hour: int = field(
        default=10,
        metadata=_doc(
            "Sign-in codes one email address may ask for per hour (per replica); 0: no limit"
        ),
    )
    ip_signins_per_hour: int = field(
        default=60,
        metadata=_doc(
            "Sign-in attempts (code requests and failed code redemptions) one client IP may make "
            "per hour (per replica); 0: no limit"
        ),
    )
    app_limits: Mapping[str, AppLimits] = field(
        default_factory=lambda: MappingProxyType({}),
        metadata=_doc(
            "Per-app overrides of quota_bytes, quota_docs and device_requests_per_minute: a TOML "
            "table ([app_limits.photos] quota_bytes = 5000000000) or, in the environment, JSON "
            '({"photos": {"quota_bytes": 5000000000}})'
        ),
    )
    trusted_proxies: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "Addresses of reverse proxies in front of couchgate; only from them is "
            "X-Forwarded-For believed (client IPs for sign-in limits)"
        ),
    )
    metrics_token: str | None = field(
        default=None,
        metadata=_doc(
            "Bearer token /metrics asks for; unset, /metrics answers loopback clients only",
            secret=True,
        ),
    )
    shutdown_timeout: float = field(
        default=30.0,
        metadata=_doc(
            "Seconds requests in flight get to finish after SIGTERM (live feeds end at once)"
        ),
    )
    log_level: str = field(default="INFO", metadata=_doc("Python logging level"))
    log_format: LogFormat = field(
        default="text", metadata=_doc("Log lines as text, or json (one object per line)")
    )

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def upstream_configured(self) -> bool:
        return self.upstream_url is not None

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with every secret replaced, safe to print or log."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret") and value:
                value = "***"
            out[f.name] = value
        return out


def _validate(s: Settings) -> None:
    if not s.secret_keys:
        raise ConfigError("secret_keys", "required: at least one key of 32+ random characters")
    for key in s.secret_keys:
        if len(key) < MIN_SECRET_LENGTH:
            raise ConfigError(
                "secret_keys", f"each key needs at least {MIN_SECRET_LENGTH} characters"
            )
    if s.upstream_url is None and s.upstream_auth != "admin":
        raise ConfigError("upstream_auth", "jwt and proxy modes need a CouchDB: set upstream_url")
    if s.upstream_url is not None and not re.match(r"^https?://[^/]+", s.upstream_url):
        raise ConfigError("upstream_url", "must be an http:// or https:// URL")
    if s.upstream_auth == "jwt" and not s.upstream_jwt_secret:
        raise ConfigError("upstream_jwt_secret", "required when upstream_auth is jwt")
    if s.upstream_jwt_secret is not None and len(s.upstream_jwt_secret) < MIN_SECRET_LENGTH:
        raise ConfigError("upstream_jwt_secret", f"needs at least {MIN_SECRET_LENGTH} characters")
    if s.upstream_auth == "proxy" and not s.upstream_proxy_secret:
        raise ConfigError("upstream_proxy_secret", "required when upstream_auth is proxy")
    if (s.upstream_user is None) != (s.upstream_password is None):
        raise ConfigError(
            "upstream_password", "set both upstream_user and upstream_password, or neither"
        )
    if not re.match(r"^[a-z][a-z0-9_$()+/-]*$", s.records_db):
        raise ConfigError("records_db", "not a valid CouchDB database name")
    if not 0 < s.port < 65536:
        raise ConfigError("port", "must be between 1 and 65535")
    if s.email_delivery == "smtp":
        if not s.smtp_host:
            raise ConfigError("smtp_host", "required when email_delivery is smtp")
        if not s.smtp_from:
            raise ConfigError("smtp_from", "required when email_delivery is smtp")
    if s.registration == "allowlist" and not s.allowlist:
        raise ConfigError("allowlist", "required when registration is allowlist")
    if s.max_request_size < 1024:
        raise ConfigError("max_request_size", "must be at least 1024 bytes")
    if s.max_import_size < 1024:
        raise ConfigError("max_import_size", "must be at least 1024 bytes")
    for origin in s.cors_origins:
        if origin == "*" or not re.match(r"^https?://[^/]+$", origin):
            raise ConfigError(
                "cors_origins", f"{origin!r} is not an origin like https://app.example"
            )
    if not s.apps:
        raise ConfigError("apps", "at least one app name or pattern")
    for name in (
        "quota_bytes",
        "quota_docs",
        "device_requests_per_minute",
        "feeds_per_device",
        "feeds_per_user",
        "devices_per_user",
        "max_live_feeds",
        "apps_per_user",
        "address_signins_per_hour",
        "ip_signins_per_hour",
    ):
        if getattr(s, name) < 0:
            raise ConfigError(name, "must be 0 (no limit) or more")
    for app, limits in s.app_limits.items():
        if not APP_NAME.match(app):
            raise ConfigError("app_limits", f"{app!r} is not an app name")
        if any(v is not None and v < 0 for v in dataclasses.astuple(limits)):
            raise ConfigError("app_limits", f"limits of {app!r} must be 0 (no limit) or more")
    if s.idle_timeout <= 0:
        raise ConfigError("idle_timeout", "must be more than 0 seconds")
    if s.shutdown_timeout < 0:
        raise ConfigError("shutdown_timeout", "must be 0 or more seconds")
    if s.metrics_token is not None and len(s.metrics_token) < 16:
        raise ConfigError("metrics_token", "needs at least 16 characters")
    if s.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError("log_level", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL")


def load_settings(
    *,
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Build :class:`Settings` from the layers; raises :class:`ConfigError` naming the setting."""
    env = os.environ if env is None else env
    hints = typing.get_type_hints(Settings)
    names = {f.name for f in dataclasses.fields(Settings)}
    values: dict[str, object] = {}

    if config_file is not None:
        try:
            with open(config_file, "rb") as fh:
                table = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError("config", f"cannot read {config_file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", f"{config_file} is not valid TOML: {exc}") from None
        for key, raw in table.items():
            if key not in names:
                raise ConfigError(key, f"unknown setting in {config_file}")
            values[key] = parse(key, hints[key], raw)

    for name in names:
        raw_env = env.get(env_name(name))
        if raw_env is not None:
            values[name] = parse(name, hints[name], raw_env.strip())

    for name, raw in (overrides or {}).items():
        if name not in names:
            raise ConfigError(name, "unknown setting")
        if raw is not None:
            values[name] = parse(name, hints[name], raw)

    return Settings(**values)  # type: ignore[arg-type]
