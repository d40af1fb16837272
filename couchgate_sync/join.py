"""Signing a device in (``/auth/*``), pairing links, and the first device's key.

Three ways in, as the demo web app has: an enrollment code (``couchgate users add``), a code sent
by email, or a pairing link made by a device already signed in. A pairing link is the demo's:
``SERVER/demo/#pair=CODE&key=EXPORT``; the fragment never reaches a server, and it carries the
app key, so whoever holds the link holds the notes (it is single-use and short-lived).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

import aiohttp

from .remote import RemoteError, Unreachable, refusal


@dataclass(frozen=True)
class SignedIn:
    token: str
    user: str
    device: str


@dataclass(frozen=True)
class Pairing:
    code: str
    key: str


def parse_pairing(text: str) -> Pairing | None:
    """The code and key of a pairing link (or of its bare fragment), as notes.js reads them."""
    fragment = text.split("#", 1)[1] if "#" in text else text
    params = parse_qs(fragment, keep_blank_values=False)
    code, key = params.get("pair", [None])[0], params.get("key", [None])[0]
    if not code or not key:
        return None
    return Pairing(code, key)


def pairing_link(server: str, code: str, key: str) -> str:
    return f"{server.rstrip('/')}/demo/#pair={quote(code, safe='')}&key={quote(key, safe='')}"


class Auth:
    def __init__(self, session: aiohttp.ClientSession, server: str) -> None:
        self.session = session
        self.server = server.rstrip("/")

    async def _post(self, path: str, body: dict[str, Any], token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with self.session.post(self.server + path, json=body, headers=headers) as r:
                answer = await r.json(content_type=None)
                status = r.status
        except aiohttp.ClientConnectionError as exc:
            raise Unreachable(type(exc).__name__) from None
        if status == 401 and not token:
            raise RemoteError("that code is wrong, used or expired: ask for a new one")
        if status >= 300:
            raise refusal(status, answer)
        return answer

    async def _signed(self, path: str, body: dict[str, Any]) -> SignedIn:
        answer = await self._post(path, body)
        return SignedIn(str(answer["token"]), str(answer["user"]), str(answer["device"]))

    async def enroll(self, code: str, device: str) -> SignedIn:
        return await self._signed("/auth/enroll", {"code": code.strip(), "device": device})

    async def redeem_link(self, code: str, device: str) -> SignedIn:
        return await self._signed("/auth/link/redeem", {"code": code, "device": device})

    async def request_email_code(self, email: str) -> str:
        answer = await self._post("/auth/code", {"email": email})
        return str(answer["challenge"])

    async def redeem_email_code(self, challenge: str, code: str, device: str) -> SignedIn:
        return await self._signed(
            "/auth/token", {"challenge": challenge, "code": code, "device": device}
        )

    async def make_link(self, token: str) -> str:
        answer = await self._post("/auth/link", {}, token=token)
        return str(answer["code"])
