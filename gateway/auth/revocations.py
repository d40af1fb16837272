"""Follow the records database so a device revoked through any replica (or the CLI) is checked
upstream again at its next request here and loses its open live feeds here too, within one
long-poll round trip."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from gateway.auth.records import IdentityStore
from gateway.replication.feeds import FeedRegistry
from gateway.upstream.backend import Backend
from gateway.upstream.member_auth import admin_headers

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 55_000
# The embedded store wakes long polls only for writes of its own process; a CLI in another
# process writes to the same file unseen, and only a poll's end re-reads it. So poll shortly.
EMBEDDED_POLL_TIMEOUT_MS = 5_000
RETRY_DELAY_S = 5.0


async def current_seq(backend: Backend) -> object:
    """Where the records feed stands now; following from here, nothing after start-up is
    missed however late the first long poll goes out."""
    try:
        info = await backend.records.info()
    except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
        log.warning("could not read the records feed's position (%s)", type(exc).__name__)
        return "now"
    return info.get("update_seq", "now")


async def follow_revocations(
    backend: Backend,
    feeds: FeedRegistry,
    identities: IdentityStore,
    since: object = "now",
    poll_ms: int = POLL_TIMEOUT_MS,
) -> None:
    url = backend.url / backend.settings.records_db / "_changes"
    headers = admin_headers(backend.settings)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=poll_ms / 1000 + 30)
    while True:
        params = {"feed": "longpoll", "since": str(since), "timeout": str(poll_ms)}
        try:
            async with backend.http.get(
                url, params=params, headers=headers, timeout=timeout
            ) as resp:
                if resp.status != 200:
                    raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("following revocations failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(RETRY_DELAY_S)
            continue
        since = body.get("last_seq", since)
        for row in body.get("results", []):
            doc_id = str(row.get("id", ""))
            if row.get("deleted") and doc_id.startswith("device:"):
                key = doc_id.removeprefix("device:")
                uid, _, device = key.partition(":")
                identities.devices.forget(uid, device)
                feeds.close_device(key)
