"""Document ids for natural keys: a keyed MAC, so the server cannot read or guess them.

``id = "h" + b64u(BLAKE2b-128(key=K_idmac, u32‖app_id ‖ NFC(natural_key)))`` — 23 characters.
The ``h`` prefix keeps ids from starting with ``_`` (reserved by CouchDB). Keep the natural key
inside the body if you need it back. Random opaque ids remain the default for everything else.
"""

from __future__ import annotations

import unicodedata

from nacl.bindings import crypto_generichash_blake2b_salt_personal

from .codec import b64u_encode, u32_framed
from .keys import Keyring

__all__ = ["id_for"]

ID_MAC_BYTES = 16


def id_for(natural_key: str, keyring: Keyring, *, kid: bytes | None = None) -> str:
    """The document id for ``natural_key`` under the active key (or the key ``kid``).

    The id depends on the key: after a rotation, look up old documents with ``kid=`` the old
    key id and re-create them under the new id.
    """
    keys = keyring.active_keys() if kid is None else keyring.keys_for(kid)
    message = u32_framed(keyring.app_id.encode("utf-8")) + unicodedata.normalize(
        "NFC", natural_key
    ).encode("utf-8")
    mac = crypto_generichash_blake2b_salt_personal(
        message, digest_size=ID_MAC_BYTES, key=keys.idmac
    )
    return "h" + b64u_encode(mac)
