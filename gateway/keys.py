"""The ``web.AppKey`` and request keys of couchgate's shared state, in one place.

The modules whose types are stored here never import this one, so any handler can reach shared
state without import cycles. Four keys live beside their module instead, because their type's
module imports this one (or its package's ``__init__`` does), and defining them here would be an
import circle:

- ``ops.metrics.METRICS`` and ``ops.metrics.LIVE``: ``Metrics``' module imports the web
  middlewares, which read the request keys below;
- ``limits.connections.CAPACITY``: ``Capacity`` shares its module with the middleware that reads
  the settings and the identity through ``keys``;
- ``shares.SHARES`` and ``shares.FETCH_LIMITER``: ``ShareStore`` and the share links' limiter
  belong to the share routes, and importing ``gateway.shares.store`` runs the package's
  ``__init__``, which imports those routes.
"""

from __future__ import annotations

import jinja2
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
JINJA = web.AppKey("dashboard_jinja", jinja2.Environment)

REQUEST_ID = web.RequestKey("request_id", str)
ROUTE_CLASS = web.RequestKey("route_class", str)
IDENTITY = web.RequestKey("identity", Device)
