"""What the store's handlers share, under one typed ``web.AppKey`` (imports nothing of ours but
the storage and feed types, so every handler module can import it without cycles)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from ..changes import FeedHub
from ..storage import Storage


@dataclass
class StoreState:
    """Filled in by ``cleanup_ctx`` once the file is open (the app itself is frozen by then)."""

    storage: Storage
    admin_user: str
    admin_password: str
    hub: FeedHub = field(default_factory=FeedHub)
    uuid: str = ""
    closing: bool = False


STATE = web.AppKey("store_state", StoreState)
