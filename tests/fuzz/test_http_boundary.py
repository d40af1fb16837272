"""Property-based fuzzing at couchgate's HTTP boundary, on every upstream (issue 9).

A victim and an attacker each have an account and an app of the same name; the victim's
documents hold a secret. Hypothesis then sends the attacker's requests (see
:mod:`tests.fuzz.strategies`: odd methods, raw paths in every encoding, query strings, headers,
bodies; and bytes that are not HTTP at all) over raw sockets, and after every one asserts:

- no 5xx, but a clean 503 in CouchDB's shape (the documented capacity and upstream answers);
- every error couchgate answers is ``{"error", "reason"}`` JSON (what aiohttp refuses before
  couchgate sees it, a request that is not HTTP, is a plain 400 from aiohttp itself);
- ``/healthz`` answers, and so does the upstream;
- nothing of the victim's reaches the attacker;
- no log line holds a token, a code, an email address or the marker every request carries.

Besides requests of every shape, each surface added since has a strategy of its own, sent
well-formed or nearly: import archives, the share-link API, the account API (with the victim's
ids, as if leaked). At the end the victim's data, device and share link are checked whole.
``COUCHGATE_FUZZ_EXAMPLES`` sets the examples per test (default 400: about half a minute per
upstream), and an eighth of that per surface test. Parallel limit-bound requests through two
replicas are :mod:`tests.fuzz.test_concurrency`'s.
"""

from __future__ import annotations

import collections
import io
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from encryption_plugin.shares import SharedNote, new_share_key, seal_share
from gateway.upstream.backend import member_name
from tests.fuzz.awaiting import awaiting
from tests.fuzz.strategies import (
    APP,
    MARKER,
    Credentials,
    Request,
    Targets,
    account_requests,
    body_requests,
    import_requests,
    malformed_requests,
    requests,
    share_requests,
)
from tests.harness import Device, GatewayHarness
from tests.logcapture import captured_logs
from tests.rawhttp import Answer, ask

EXAMPLES = int(os.environ.get("COUCHGATE_FUZZ_EXAMPLES", "400"))
SURFACE_EXAMPLES = max(1, EXAMPLES // 8)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # No shrinking: the servers keep what an example did to them (a dead upstream fails every
    # later one), so the first failure, as generated, is the one that says what happened.
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUZZ_SURFACE = settings(FUZZ, max_examples=SURFACE_EXAMPLES)
VICTIM_EMAIL = "victim.fuzz@example.org"
ATTACKER_EMAIL = "attacker.fuzz@example.org"
SECRET = "victimsecret" + MARKER
SECRET_DOC = {"_id": "secret", "secret": SECRET}


@dataclass
class World:
    gateway: GatewayHarness
    victim: Device
    attacker: Device
    credentials: Credentials
    targets: Targets
    victim_share: tuple[str, str]
    """The victim's link: its id and sealed copy, which nothing the attacker does may change."""
    logs: io.StringIO
    examples: int = 0
    logs_read: int = 0
    refused_by_aiohttp: int = 0
    recent: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=3))
    """The last requests sent: an upstream that dies may take a moment to."""
    awaiting: dict[str, str] = field(default_factory=dict)
    """Known findings elsewhere (:mod:`tests.fuzz.awaiting`): one example each."""
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.gateway.server.port or 0

    def secrets(self) -> list[str]:
        out = [VICTIM_EMAIL, ATTACKER_EMAIL, MARKER, SECRET]
        for device in (self.victim, self.attacker):
            out += [device.token, device.token.rsplit(".", 1)[1]]
        return out

    def assert_logs_clean(self, context: str, *, traceback_expected: bool = False) -> None:
        text = self.logs.getvalue()
        new, self.logs_read = text[self.logs_read :], len(text)
        for needle in self.secrets():
            assert needle not in new, f"{needle[:16]}... logged after {context}:\n{new[-2000:]}"
        if not traceback_expected:
            assert "Traceback" not in new, f"traceback logged after {context}:\n{new[-4000:]}"


@pytest.fixture
async def world(gateway: GatewayHarness) -> AsyncIterator[World]:
    with captured_logs(gateway.settings) as logs:
        victim = await gateway.new_device(VICTIM_EMAIL)
        attacker = await gateway.new_device(ATTACKER_EMAIL)
        for device in (victim, attacker):
            assert (await gateway.call("PUT", f"/db/{APP}", device=device))[0] == 201
        put = await gateway.call("PUT", f"/db/{APP}/secret", device=victim, json=SECRET_DOC)
        assert put[0] == 201, put
        assert (await gateway.call("PUT", "/db/private", device=victim))[0] == 201
        local = await gateway.call(
            "PUT", f"/db/{APP}/_local/secret", device=victim, json={"secret": SECRET}
        )
        assert local[0] == 201, local
        credentials = Credentials(
            attacker.token, victim.user, victim.device, member_name(victim.user), victim.token[:-3]
        )
        envelope = seal_share(new_share_key(), SharedNote("note", SECRET))
        shares = []
        for device in (victim, attacker):
            status, made = await gateway.call(
                "POST", "/shares/api", device=device, json={"e2e": envelope, "app": APP}
            )
            assert status == 201, made
            shares.append(made["id"])
        targets = Targets(attacker.device, shares[1], shares[0], envelope)
        world = World(gateway, victim, attacker, credentials, targets, (shares[0], envelope), logs)
        yield world
        # The victim's data and device came through whole.
        status, doc = await gateway.call("GET", f"/db/{APP}/secret", device=victim)
        assert (status, doc.get("secret")) == (200, SECRET), doc
        assert (await gateway.call("GET", "/auth/me", device=victim))[0] == 200
        share_id, sealed = world.victim_share
        status, copy = await gateway.call("GET", f"/s/{share_id}/data")
        assert (status, copy.get("e2e")) == (200, sealed), copy
        world.assert_logs_clean("the last example")
    print(
        f"\nfuzz [{gateway.upstream.kind}]: {world.examples} examples, statuses "
        f"{dict(sorted(world.statuses.items()))}, {world.refused_by_aiohttp} refused by aiohttp"
    )
    for finding, example in world.awaiting.items():
        print(f"  awaiting a fix elsewhere: {finding}\n    e.g. {example}")


async def assert_still_up(world: World, context: str) -> None:
    world.recent.append(context[:1000])
    context = " then ".join(world.recent)
    health = await ask(world.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert health.status == 200, f"/healthz answered {health.status} after {context}"
    try:
        status, _ = await world.gateway.peek("GET", "/")
    except OSError as exc:
        raise AssertionError(f"the upstream is gone ({exc!r}) after {context}") from None
    assert status == 200, f"the upstream answered {status} after {context}"


def assert_no_leak(answer: Answer, context: str) -> None:
    seen = answer.body + json.dumps(answer.headers).encode()
    assert SECRET.encode() not in seen, f"the victim's secret reached the attacker: {context}"
    assert b'"secret"' not in answer.body or b"victimsecret" not in answer.body, context


def couch_shape_problem(answer: Answer) -> str | None:
    try:
        body = answer.json()
    except ValueError:
        return f"error {answer.status} is not JSON: {answer.body[:300]!r}"
    if not isinstance(body, dict):
        return f"error body is not an object: {body!r}"
    if not (isinstance(body.get("error"), str) and isinstance(body.get("reason"), str)):
        return f"error body is not CouchDB's shape: {body!r}"
    return None


CAPACITY_REASONS = ("at its connection limit", "as many live feeds as it can")


def problem_with(answer: Answer, *, head: bool) -> str | None:
    """What is wrong with one answer of couchgate's, or None."""
    if answer.status is None:
        return None  # closed without an answer: the caller says whether that may happen
    if answer.headers.get("server") != "couchgate":
        # aiohttp refused it before couchgate saw it: not HTTP.
        return None if answer.status == 400 else f"{answer.status} from outside couchgate"
    if answer.status >= 500:
        # 503 only for the documented capacity limits: the upstream is up throughout.
        shape = couch_shape_problem(answer) if not head else None
        if answer.status != 503 or shape or not any(r in _text(answer) for r in CAPACITY_REASONS):
            return f"{answer.status} {answer.body[:300]!r}"
        return None
    if answer.status >= 400 and not head and answer.complete:
        return couch_shape_problem(answer)
    return None


def _text(answer: Answer) -> str:
    return answer.body.decode("utf-8", "replace")


def check_answer(
    world: World,
    answer: Answer,
    context: str,
    request: Request | None,
    *,
    head: bool = False,
) -> bool:
    """Assert what must hold of one answer; True when it shows a finding awaiting its fix
    elsewhere (:mod:`tests.fuzz.awaiting`), whose traceback in the log is then expected."""
    world.examples += 1
    world.statuses[answer.status or 0] = world.statuses.get(answer.status or 0, 0) + 1
    if answer.headers.get("server") not in (None, "couchgate"):
        world.refused_by_aiohttp += 1
    assert_no_leak(answer, context)
    problem = problem_with(answer, head=head)
    if problem is None:
        return False
    target, headers, body = "", {}, b""
    if request is not None:
        target, headers = request.target, {n.lower(): v for n, v in request.headers}
        body = request.body
    known = awaiting(target, headers, body, answer, world.gateway.upstream.kind)
    if known is not None:
        world.awaiting.setdefault(known.finding, context[:400])
        return True
    raise AssertionError(f"{problem}; to {context}")


async def _one(world: World, request: Request) -> None:
    """Send one request; assert what must hold of its answer, the gateway and the logs."""
    context = request.describe()
    head = request.method == "HEAD"
    answer = await ask(world.port, request.raw(), head=head)
    assert answer.status is not None, f"no answer at all to {context}"
    known = check_answer(world, answer, context, request, head=head)
    await assert_still_up(world, context)
    world.assert_logs_clean(context, traceback_expected=known)


@FUZZ
@given(data=st.data())
async def test_well_formed_requests_are_answered_safely(world: World, data: st.DataObject) -> None:
    await _one(world, data.draw(requests(world.credentials), label="request"))


@FUZZ
@given(data=st.data())
async def test_every_body_endpoint_takes_any_body_safely(world: World, data: st.DataObject) -> None:
    """The bodies of :func:`~tests.fuzz.strategies.bodies` (odd JSON, deep, not JSON, bad
    UTF-8, multipart) at every endpoint that reads one, as a signed-in user."""
    await _one(world, data.draw(body_requests(world.credentials), label="request"))


@FUZZ
@given(data=st.data())
async def test_what_is_not_http_is_refused_quietly(world: World, data: st.DataObject) -> None:
    """aiohttp refuses most of these itself (400, or it closes); what it lets through as HTTP
    after all is held to the same rules as any request."""
    raw = data.draw(malformed_requests(world.credentials), label="raw")
    context = repr(raw[:300])
    known = check_answer(world, await ask(world.port, raw), context, None)
    await assert_still_up(world, context)
    world.assert_logs_clean(context, traceback_expected=known)


@FUZZ_SURFACE
@given(data=st.data())
async def test_import_archives_are_loaded_or_refused_safely(
    world: World, data: st.DataObject
) -> None:
    """Every example an archive (:func:`~tests.fuzz.strategies.archives`), gzipped or not."""
    await _one(world, data.draw(import_requests(world.credentials), label="request"))


@FUZZ_SURFACE
@given(data=st.data())
async def test_the_share_api_is_answered_safely(world: World, data: st.DataObject) -> None:
    """Create, re-seal, list, revoke and fetch, aimed at the client's link and the victim's:
    the victim's link comes through unchanged (checked at the end)."""
    request = data.draw(share_requests(world.credentials, world.targets), label="request")
    await _one(world, request)


@FUZZ_SURFACE
@given(data=st.data())
async def test_the_account_api_is_answered_safely(world: World, data: st.DataObject) -> None:
    """What an account holds, its export, and deleting apps, devices and the account by any
    name: the victim's apps, device and account come through (checked at the end)."""
    request = data.draw(account_requests(world.credentials, world.targets), label="request")
    await _one(world, request)
