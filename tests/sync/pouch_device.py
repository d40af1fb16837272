"""A PouchDB device on the same account as a folder device: the real PouchDB under Node with the
project's ep1 plugin (``tests/js/e2e.mjs``'s ``device`` command), its local database kept across
steps so that it can edit offline and sync when the test says."""

from __future__ import annotations

import asyncio
import shutil
from types import TracebackType
from typing import Any

from encryption_plugin import Keyring
from tests.harness import Device, GatewayHarness
from tests.pouch import JS_DIR, PouchSession
from tests.sync.devices import FolderDevice, credentials_of, joined_user

DRIVER = JS_DIR / "e2e.mjs"


class PouchDevice:
    """Use as ``async with await PouchDevice.pair(gateway, folder_device) as pouch:``."""

    def __init__(self, session: PouchSession, keyring: Keyring) -> None:
        self.session = session
        self.keyring = keyring

    @classmethod
    async def pair(cls, gateway: GatewayHarness, like: FolderDevice) -> PouchDevice:
        """A device of ``like``'s account (a token of its own, the same app key)."""
        creds = credentials_of(like)
        own = await gateway.new_device(
            same_user_as=Device(creds["token"], joined_user(like), "", gateway.url),
            name="pouchdb",
        )
        node = shutil.which("node")
        assert node is not None, "node is not on PATH"
        proc = await asyncio.create_subprocess_exec(
            node,
            str(DRIVER),
            cwd=JS_DIR,
            limit=64 * 1024 * 1024,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        session = PouchSession("device", proc)
        remote = {"url": own.db_url("notes"), "token": own.token, "key": creds["key"]}
        await session.send({"command": "device", "remote": remote})
        await session.wait_for("ready")
        return cls(session, Keyring.from_export(creds["key"], app_id="notes"))

    async def step(self, op: str, **params: Any) -> dict[str, Any]:
        await self.session.send({"op": op, **params})
        return await self.session.wait_for("done", timeout=90.0)

    async def sync(self) -> None:
        done = await self.step("sync")
        for side in ("push", "pull"):
            assert done[side]["ok"] and not done[side]["doc_write_failures"], done

    async def get(self, doc_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The document as PouchDB opens it (its winner, ``_conflicts``) and every live leaf."""
        done = await self.step("get", id=doc_id)
        return done["doc"], done["leaves"]

    async def put(self, doc: dict[str, Any]) -> str:
        return str((await self.step("put", doc=doc))["rev"])

    async def __aenter__(self) -> PouchDevice:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.session.send({"op": "end"})
            await self.session.result(30.0)
        await self.session.kill()
