"""Keys: the per-app root key, the subkeys derived from it, and the keyring that holds them.

``K_root`` is 32 random bytes made on the first device and carried to the others by export or QR
code; it is never derived from a password. Everything else is derived from it with libsodium's
``crypto_kdf_derive_from_key`` construction (keyed BLAKE2b over the empty message, with
``salt = LE64(subkey_id) ‖ 0^8`` and ``personal = "ep1-keys" ‖ 0^8``), so a device only ever stores
or transmits ``K_root``:

=========  ==  =====  ==========================================
subkey     id  bytes  use
=========  ==  =====  ==========================================
``K_doc``  1   32     XChaCha20-Poly1305 key for document bodies
``K_att``  2   32     XChaCha20-Poly1305 key for attachments
``K_idmac``3   32     BLAKE2b key for ids made from natural keys
``kid``    4   16→8   public key id: first 8 bytes of the 16 derived
=========  ==  =====  ==========================================
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, overload

from nacl.bindings import crypto_generichash_blake2b_salt_personal

from . import _rng
from .codec import b64u_encode, u64
from .errors import UnknownKey

if TYPE_CHECKING:
    from .qr import QRKind

__all__ = ["KEY_BYTES", "KID_BYTES", "KeySet", "Keyring", "check_app_id", "derive_subkey"]

KEY_BYTES = 32
KID_BYTES = 8
KDF_CONTEXT = b"ep1-keys"

_APP_ID = re.compile(r"[a-z0-9.-]{1,64}")


def check_app_id(app_id: str) -> str:
    """Return ``app_id`` if it matches ``[a-z0-9.-]{1,64}``; raise :class:`ValueError` otherwise."""
    if not isinstance(app_id, str) or not _APP_ID.fullmatch(app_id):
        raise ValueError("app_id must match [a-z0-9.-]{1,64}")
    return app_id


def derive_subkey(root: bytes, subkey_id: int, length: int) -> bytes:
    """libsodium ``crypto_kdf_derive_from_key(length, subkey_id, "ep1-keys", root)``.

    PyNaCl does not bind ``crypto_kdf``; this is its documented definition, spelled out with the
    BLAKE2b binding (salt and personalisation are 8 meaningful bytes zero-padded to 16).
    """
    if len(root) != KEY_BYTES:
        raise ValueError("K_root must be 32 bytes")
    return crypto_generichash_blake2b_salt_personal(
        b"",
        digest_size=length,
        key=root,
        salt=u64(subkey_id) + bytes(8),
        person=KDF_CONTEXT + bytes(8),
    )


@dataclass(frozen=True)
class KeySet:
    """One ``K_root`` and everything derived from it. Secret fields are left out of ``repr``."""

    root: bytes = field(repr=False)
    doc: bytes = field(repr=False)
    att: bytes = field(repr=False)
    idmac: bytes = field(repr=False)
    kid: bytes

    @classmethod
    def from_root(cls, root: bytes) -> KeySet:
        return cls(
            root=bytes(root),
            doc=derive_subkey(root, 1, 32),
            att=derive_subkey(root, 2, 32),
            idmac=derive_subkey(root, 3, 32),
            kid=derive_subkey(root, 4, 16)[:KID_BYTES],
        )


def fingerprint_of(kid: bytes) -> str:
    """Short, human-comparable form of a key id: 16 upper-case hex digits in groups of four.

    The kid is public, so the fingerprint is too; it exists so that two devices can confirm they
    hold the same key after an import.
    """
    hexed = kid.hex().upper()
    return "-".join(hexed[i : i + 4] for i in range(0, len(hexed), 4))


class Keyring:
    """The keys of one app: ``kid → K_root``, plus which key seals new data.

    Seal with the *active* key; open with whichever key the envelope names. Rotation is
    :meth:`rotate` (or :meth:`add` of a key made elsewhere followed by :meth:`activate`): older
    keys stay so existing data still opens, and is re-sealed under the new key on its next write.
    """

    __slots__ = ("_active", "_app_id", "_keys")

    def __init__(self, app_id: str, root: bytes) -> None:
        self._app_id = check_app_id(app_id)
        first = KeySet.from_root(root)
        self._keys: dict[bytes, KeySet] = {first.kid: first}
        self._active = first.kid

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def generate(cls, app_id: str) -> Keyring:
        """A keyring with one new random ``K_root``."""
        return cls(app_id, _rng.random_bytes(KEY_BYTES))

    @classmethod
    def from_export(cls, text: str, *, app_id: str | None = None) -> Keyring:
        """Import an ``ep1k:`` string or its base32 form (see :mod:`.export`).

        With ``app_id``, also require the export to be for that app.
        """
        from .export import parse_export

        exported_app, root = parse_export(text)
        if app_id is not None and exported_app != app_id:
            raise UnknownKey("the key was exported for another app")
        return cls(exported_app, root)

    # -- the keys ----------------------------------------------------------------------------

    @property
    def app_id(self) -> str:
        return self._app_id

    @property
    def kid(self) -> bytes:
        """Id of the active key (8 bytes, public)."""
        return self._active

    @property
    def kids(self) -> tuple[bytes, ...]:
        return tuple(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"<Keyring app_id={self._app_id!r} kid={b64u_encode(self._active)} keys={len(self)}>"

    def add(self, root: bytes | Keyring) -> bytes:
        """Add an older (or future) key without making it active; return its kid.

        A :class:`Keyring` argument contributes all of its keys; it must be for the same app.
        """
        if isinstance(root, Keyring):
            if root.app_id != self._app_id:
                raise ValueError("cannot merge keyrings of different apps")
            self._keys.update({k: v for k, v in root._keys.items() if k not in self._keys})
            return root.kid
        keys = KeySet.from_root(root)
        self._keys.setdefault(keys.kid, keys)
        return keys.kid

    def activate(self, kid: bytes) -> None:
        """Make a key already in the keyring the one that seals."""
        self.keys_for(kid)
        self._active = kid

    def rotate(self) -> bytes:
        """Make a new random key, activate it and return its kid; older keys are kept."""
        kid = self.add(_rng.random_bytes(KEY_BYTES))
        self._active = kid
        return kid

    def active_keys(self) -> KeySet:
        return self._keys[self._active]

    def keys_for(self, kid: bytes) -> KeySet:
        """The key set for ``kid``; :class:`UnknownKey` if this keyring does not hold it."""
        try:
            return self._keys[kid]
        except KeyError:
            raise UnknownKey(f"no key with kid {b64u_encode(kid)} in the keyring") from None

    # -- sharing with another device -----------------------------------------------------------

    def export(self) -> str:
        """The active key as ``ep1k:<app_id>:<b64u>``. This is the secret: handle with care."""
        from .export import export_string

        return export_string(self._app_id, self.active_keys().root)

    def export_base32(self) -> str:
        """The active key as upper-case base32 in groups of four, for typing by hand."""
        from .export import export_base32

        return export_base32(self._app_id, self.active_keys().root)

    def fingerprint(self) -> str:
        """Fingerprint of the active kid, e.g. ``3F2A-91C0-5B7E-D144``; safe to show."""
        return fingerprint_of(self._active)

    @overload
    def qr(self, kind: Literal["text"] = "text", *, scale: int = 1, border: int = 2) -> str: ...
    @overload
    def qr(self, kind: Literal["svg"], *, scale: int = 4, border: int = 2) -> str: ...
    @overload
    def qr(self, kind: Literal["png"], *, scale: int = 4, border: int = 2) -> bytes: ...

    def qr(self, kind: QRKind = "text", *, scale: int = 4, border: int = 2) -> str | bytes:
        """The export string as a QR code: terminal text, SVG text or PNG bytes (via segno).

        The code carries the secret key; show it only on the user's request, on their screen.
        """
        from .qr import render

        return render(self.export(), kind, scale=scale, border=border)
