"""End-to-end encryption of CouchDB documents in the ``ep1`` envelope (docs/encryption-format.md).

Seal on the device before a document goes to the server, open after it comes back::

    keyring = Keyring.generate("notes")          # or Keyring.from_export(text)
    stored = seal_doc({"_id": "a", "title": "hi"}, keyring)
    assert open_doc(stored, keyring)["title"] == "hi"

Everything that fails raises a :class:`CryptoError`; nothing returns an error value.
"""

from __future__ import annotations

from .attachments import MAX_ATTACHMENT_BYTES, AttachmentInfo, open_attachment, seal_attachment
from .envelope import attachment_index, is_sealed, open_doc, seal_doc
from .errors import (
    AuthenticationFailed,
    BadEnvelope,
    CryptoError,
    UnknownKey,
    UnknownSuite,
    WeakParameters,
)
from .ids import id_for
from .keys import Keyring
from .wrap import unwrap, unwrap_async, wrap, wrap_async

__all__ = [
    "MAX_ATTACHMENT_BYTES",
    "AttachmentInfo",
    "AuthenticationFailed",
    "BadEnvelope",
    "CryptoError",
    "Keyring",
    "UnknownKey",
    "UnknownSuite",
    "WeakParameters",
    "attachment_index",
    "id_for",
    "is_sealed",
    "open_attachment",
    "open_doc",
    "seal_attachment",
    "seal_doc",
    "unwrap",
    "unwrap_async",
    "wrap",
    "wrap_async",
]
