"""Share envelopes (docs/share-links.md): one note sealed under a fresh key of its own.

A share key is 32 random bytes used as the ``K_root`` of an ep1 keyring for the app id
``couchgate-share``; the note is sealed as the ep1 document ``share``. The key travels only in a
link's fragment, base64url without padding, and is independent of every app key, so a link
reveals nothing but the one note. Mirrors ``gateway/shares/src/share-entry.js`` byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _rng
from .codec import b64u_decode, b64u_encode
from .envelope import open_doc, seal_doc
from .errors import BadEnvelope
from .keys import KEY_BYTES, Keyring

SHARE_APP_ID = "couchgate-share"
SHARE_DOC_ID = "share"
SHARE_TYPE = "text/markdown"


@dataclass(frozen=True, slots=True)
class SharedNote:
    name: str
    text: str
    type: str = SHARE_TYPE


def new_share_key() -> str:
    """A fresh share key, as the fragment carries it."""
    return b64u_encode(_rng.random_bytes(KEY_BYTES))


def _keyring(fragment: str) -> Keyring:
    key = b64u_decode(fragment, what="share key")
    if len(key) != KEY_BYTES:
        raise BadEnvelope("a share key is 32 bytes")
    return Keyring(SHARE_APP_ID, key)


def seal_share(fragment: str, note: SharedNote) -> str:
    """The share envelope (an ``ep1.`` string) of ``note`` under the fragment's key."""
    body = {"_id": SHARE_DOC_ID, "name": note.name, "type": note.type, "text": note.text}
    return str(seal_doc(body, _keyring(fragment))["e2e"])


def open_share(fragment: str, envelope: str) -> SharedNote:
    """The note in a share envelope; raises a :class:`CryptoError` if the key does not open it."""
    doc = open_doc({"_id": SHARE_DOC_ID, "e2e": envelope}, _keyring(fragment))
    return SharedNote(str(doc.get("name", "")), str(doc.get("text", "")), str(doc.get("type", "")))
