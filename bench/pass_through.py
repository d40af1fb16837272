"""A bare aiohttp pass-through: the floor of any proxy built on aiohttp.

Every request goes to ``upstream_url`` + its path as it came, with the upstream's admin
credentials and without checks, authentication or metrics; the answer streams back chunk by
chunk. What couchgate costs beyond it is its own work; what it costs beyond going direct is what
any aiohttp hop costs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

DROPPED = ("host", "authorization", "connection")


@contextlib.asynccontextmanager
async def pass_through(upstream_url: str, auth: dict[str, str]) -> AsyncIterator[str]:
    """Serve the pass-through on a free loopback port for the block; yields its base URL."""
    async with aiohttp.ClientSession(auto_decompress=False) as session:

        async def forward(request: web.Request) -> web.StreamResponse:
            body = await request.read() if request.body_exists else None
            headers = {k: v for k, v in request.headers.items() if k.lower() not in DROPPED}
            async with session.request(
                request.method,
                upstream_url + request.raw_path,
                headers={**headers, **auth},
                data=body,
                allow_redirects=False,
            ) as up:
                response = web.StreamResponse(status=up.status)
                response.content_type = up.content_type
                for name in ("Content-Encoding", "Location", "ETag"):
                    if name in up.headers:  # bytes pass as they came: their encoding with them
                        response.headers[name] = up.headers[name]
                await response.prepare(request)
                async for chunk in up.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            yield f"http://{host}:{port}"
        finally:
            await runner.cleanup()
