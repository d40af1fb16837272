"""Rate limits (how fast anyone may ask) and the quota settings that apply to an app.

Rate limits are token buckets in this process's memory: with N replicas behind a load balancer a
client gets up to N times the budget, which is fine for what they guard against (a runaway
client, code guessing, mail bombing); the attempt counters that must hold across replicas (code
guesses per challenge) live upstream in the records. A bucket is a few floats, so a hand-written
one beats a dependency here.

Quotas themselves are enforced in :mod:`gateway.limits.quotas`.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from aiohttp import web

from gateway.auth.records.devices import Device
from gateway.config import Settings
from gateway.errors import TooManyRequests

MINUTE, HOUR = 60.0, 3600.0
MAX_KEYS = 100_000

BURST_MINUTES = 5
"""A device's request bucket holds this many minutes of its budget: a first sync runs at full
speed for minutes (PouchDB's one-shot ``replicate()`` gives up on a 429), a runaway client is
held to the steady rate soon after."""
REPLICATION_COST = 0.25
"""What one request of the replication protocol's own batches costs, against 1 for any other:
each carries up to a batch of documents (100 by default), and a replication makes several per
batch (changes, revs_diff, bulk_get or bulk_docs, a checkpoint)."""
REPLICATION_ROUTES = frozenset(
    {
        "endpoint_changes",
        "endpoint_revs_diff",
        "endpoint_bulk_get",
        "endpoint_bulk_docs",
        "endpoint_all_docs",
        "endpoint_ensure_full_commit",
        "local",
    }
)


class RateLimiter:
    """Token buckets by key. A bucket holds up to ``capacity`` tokens and refills at
    ``capacity`` per ``period`` seconds, so a client may burst a whole period's worth and then
    goes on at the steady rate. Buckets that have refilled are forgotten when there are many."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS):
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[Hashable, tuple[float, float, int, float]] = {}

    def _level(self, key: Hashable, capacity: int, period: float, now: float) -> float:
        tokens, stamp, _, _ = self._buckets.get(key, (float(capacity), now, capacity, period))
        return min(float(capacity), tokens + (now - stamp) * capacity / period)

    def wait(self, key: Hashable, capacity: int, period: float) -> float:
        """Seconds until ``key`` may go on; 0.0 when it may now. Takes nothing."""
        level = self._level(key, capacity, period, self._clock())
        return 0.0 if level >= 1 else (1 - level) * period / capacity

    def take(self, key: Hashable, capacity: int, period: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens if there are (0.0), else the seconds to wait (nothing taken)."""
        now = self._clock()
        level = self._level(key, capacity, period, now)
        if level < cost:
            return (cost - level) * period / capacity
        self._store(key, level - cost, now, capacity, period)
        return 0.0

    def charge(self, key: Hashable, capacity: int, period: float) -> None:
        """Take one token whether or not there is one (a failure seen after the fact)."""
        now = self._clock()
        self._store(
            key, max(0.0, self._level(key, capacity, period, now) - 1), now, capacity, period
        )

    def give_back(self, key: Hashable, capacity: int, period: float) -> None:
        """Return one token taken earlier (never past a full bucket)."""
        now = self._clock()
        self._store(
            key,
            min(float(capacity), self._level(key, capacity, period, now) + 1),
            now,
            capacity,
            period,
        )

    def __len__(self) -> int:
        return len(self._buckets)

    def _store(
        self, key: Hashable, tokens: float, now: float, capacity: int, period: float
    ) -> None:
        self._buckets.pop(key, None)  # re-inserted last: the dict stays in order of last use
        self._buckets[key] = (tokens, now, capacity, period)
        if len(self._buckets) > self._max_keys:
            self._forget(now)

    def _forget(self, now: float) -> None:
        full = [k for k, (_, _, c, p) in self._buckets.items() if self._level(k, c, p, now) >= c]
        for key in full:
            del self._buckets[key]
        while len(self._buckets) > self._max_keys // 2:  # under attack: drop the least recent
            del self._buckets[next(iter(self._buckets))]


def client_ip(request: web.BaseRequest, trusted: tuple[str, ...]) -> str:
    """The caller's address: the peer, or, when the peer is a trusted reverse proxy, the last
    address in ``X-Forwarded-For`` that no trusted proxy added."""
    peer = request.remote or "-"
    if peer not in trusted:
        return peer
    hops = [h.strip() for v in request.headers.getall("X-Forwarded-For", []) for h in v.split(",")]
    for hop in reversed(hops):
        if hop and hop not in trusted:
            return hop
    return peer


def is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def request_cost(route: str | None) -> float:
    """What a request of a route class costs against its device's budget: a replication
    batch a quarter, anything else one."""
    return REPLICATION_COST if route in REPLICATION_ROUTES else 1.0


def app_of(request: web.BaseRequest) -> str:
    """The app a proxied request is for ('' elsewhere), for per-app limits."""
    if not request.path.startswith("/db/"):
        return ""
    return request.path[len("/db/") :].partition("/")[0]


class Limits:
    """The rate limits of one gateway process, read from its settings."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._buckets = RateLimiter(clock)

    def check_device(self, request: web.Request, device: Device, route: str | None) -> None:
        """Count one request of a signed-in device by what it costs (:func:`request_cost`);
        429 with Retry-After past its budget (a bucket of :data:`BURST_MINUTES` minutes of it,
        refilled at the per-minute rate)."""
        app = app_of(request)
        per_minute = self._per_app(app).device_requests_per_minute
        if not per_minute:
            return
        wait = self._buckets.take(
            ("device", device.key),
            per_minute * BURST_MINUTES,
            MINUTE * BURST_MINUTES,
            request_cost(route),
        )
        if wait:
            raise TooManyRequests(
                f"more than {per_minute} requests a minute from this device", retry_after=wait
            )

    def check_code_request(self, request: web.Request, email_hmac: str) -> None:
        """Count one request for a sign-in code, against its address and the caller's IP."""
        s = self._settings
        self._take_ip(request)
        if s.address_signins_per_hour and (
            wait := self._buckets.take(("address", email_hmac), s.address_signins_per_hour, HOUR)
        ):
            raise TooManyRequests("too many sign-in codes for this address", retry_after=wait)

    def check_redeem(self, request: web.Request) -> None:
        """Before a code is looked at: take one attempt from the caller's IP budget. Taken
        first, so parallel guesses cannot all pass the check before any is counted; a code
        that works gives its attempt back (:meth:`redeemed`)."""
        self._take_ip(request)

    def redeemed(self, request: web.Request) -> None:
        """A code that worked was no guess: its attempt goes back to the caller's IP."""
        per_hour = self._settings.ip_signins_per_hour
        if per_hour:
            self._buckets.give_back(("ip", self._ip(request)), per_hour, HOUR)

    def check_password_attempt(self, request: web.Request) -> None:
        """Every admin sign-in attempt takes from the caller's IP budget before any Argon2id
        work, so a burst of guesses is refused, not hashed."""
        self._take_ip(request)

    def _take_ip(self, request: web.Request) -> None:
        per_hour = self._settings.ip_signins_per_hour
        if per_hour and (wait := self._buckets.take(("ip", self._ip(request)), per_hour, HOUR)):
            raise TooManyRequests("too many sign-in attempts from this address", retry_after=wait)

    def _ip(self, request: web.Request) -> str:
        return client_ip(request, self._settings.trusted_proxies)

    def _per_app(self, app: str) -> Quota:
        return quota_for(self._settings, app)


@dataclass(frozen=True, slots=True)
class Quota:
    """The limits that apply to one app (0: none)."""

    bytes: int
    docs: int
    device_requests_per_minute: int


def quota_for(settings: Settings, app: str) -> Quota:
    own = settings.app_limits.get(app)

    def pick(name: str) -> int:
        value = None if own is None else getattr(own, name)
        return int(getattr(settings, name) if value is None else value)

    return Quota(pick("quota_bytes"), pick("quota_docs"), pick("device_requests_per_minute"))
