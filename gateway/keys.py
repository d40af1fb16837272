"""Every ``web.AppKey`` and request key of couchgate in one place.

The modules whose types are stored here never import this one, so any handler can reach shared
state without import cycles.
"""

from __future__ import annotations

from aiohttp import web

from gateway.auth.mailer import Mailer
from gateway.auth.records import IdentityStore
from gateway.auth.records.devices import Device
from gateway.auth.signing import AuthKeys
from gateway.config import Settings
from gateway.limits.rates import Limits
from gateway.replication.changes_hub import ChangesHub
from gateway.replication.feeds import FeedRegistry
from gateway.tasks import Background
from gateway.upstream.backend import Backend

SETTINGS = web.AppKey("settings", Settings)
BACKEND = web.AppKey("backend", Backend)
IDENTITIES = web.AppKey("identities", IdentityStore)
AUTH_KEYS = web.AppKey("auth_keys", AuthKeys)
MAILER = web.AppKey("mailer", Mailer)
FEEDS = web.AppKey("feeds", FeedRegistry)
BACKGROUND = web.AppKey("background", Background)
LIMITS = web.AppKey("limits", Limits)
CHANGES_HUB = web.AppKey("changes_hub", ChangesHub)

REQUEST_ID = web.RequestKey("request_id", str)
ROUTE_CLASS = web.RequestKey("route_class", str)
IDENTITY = web.RequestKey("identity", Device)
