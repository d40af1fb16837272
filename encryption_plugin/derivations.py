"""Every keyed value a synced folder derives from its app key, each under a label of its own.

couchgate-sync (and anything that reads its vault, such as the demo web app) names documents by
keyed ids so that the server learns neither paths nor contents, and seeds its chunk cutter from
the key so that the sizes of a file's pieces are no public fingerprint. Each of these is one
function here, so no caller builds a MAC input out of strings: a caller that did could (and once
did) make two purposes share one value. ``chunk cut points`` was at once the label of the cutter
seed and the path of a root-level file, whose document id the server sees; the seed now comes
from a subkey of its own and is no function of any id.

Each derivation and the label that keeps it apart (``id_for`` is :func:`.ids.id_for`, a MAC
under K_idmac; ``subkey`` is :func:`.keys.derive_subkey` of K_root)::

    path_id(path)            id_for(NFC(path))                             no NUL, no final "/"
    folder_id(path)          id_for(NFC(path) + "/")                       the trailing "/"
    version_id(of_doc, rev)  id_for("version\\0" + of_doc + "\\0" + rev)   "version\\0"
    chunk_id(piece)          id_for("chunk\\0" + hex(SHA-256(piece)))      "chunk\\0"
    cutter_seed()            BE(subkey(5, 8)) >> 1 | 1                     KDF subkey id 5

The four ids keep the bytes they had when callers built them, so existing vaults keep their
document ids. They are told apart by their natural keys: a path has no NUL and no trailing ``/``
(both are refused here), a folder's ends with ``/``, and the version and chunk keys start with
their own NUL-terminated words (a version's revision, after the last NUL, has none). Distinct
natural keys give distinct MAC inputs, so two purposes meet in one id only by a 128-bit MAC
collision.

The cutter seed moved from ``id_for("chunk cut points")`` (a collision with that file's id) to a
KDF subkey: files already cut under the old seed still read, because a file's document lists its
chunk ids and reading never re-cuts; only the next edit of such a file cuts it anew.

Safety: every value depends on the keyring's *active* key; after a rotation, ids made under an
older key are found with ``kid=`` (as :func:`.ids.id_for`). The ids are public (the server sees
them); the cutter seed is secret (it shapes what the server sees without being sent), so never log
it or store it outside the key's own protection.
"""

from __future__ import annotations

import hashlib
import unicodedata

from .ids import id_for
from .keys import Keyring, derive_subkey

__all__ = ["chunk_id", "cutter_seed", "folder_id", "path_id", "version_id"]

CUTTER_SEED_SUBKEY = 5
CUTTER_SEED_BYTES = 8
_VERSION = "version\0"
_CHUNK = "chunk\0"


def _path_key(path: str, what: str) -> str:
    """``path`` in NFC, refused when it could spell another derivation's natural key."""
    nfc = unicodedata.normalize("NFC", path)
    if "\0" in nfc:
        raise ValueError(f"a {what} path has no NUL")
    if nfc.endswith("/"):
        raise ValueError(f"a {what} path does not end with /")
    return nfc


def path_id(path: str, keyring: Keyring, *, kid: bytes | None = None) -> str:
    """The document id of the file at ``path`` (``/``-separated, relative to the folder).

    Two devices that create the same path meet in one document; NFC and NFD spellings give the
    same id. Raises :class:`ValueError` for a path with a NUL or a trailing ``/``.
    """
    return id_for(_path_key(path, "file"), keyring, kid=kid)


def folder_id(path: str, keyring: Keyring, *, kid: bytes | None = None) -> str:
    """The document id of the (empty) folder at ``path``: never the id of a file of that name."""
    return id_for(_path_key(path, "folder") + "/", keyring, kid=kid)


def version_id(of_doc: str, rev: str, keyring: Keyring, *, kid: bytes | None = None) -> str:
    """The id of the version document keeping ``of_doc`` at revision ``rev``: two devices that
    save the same version meet in one document. Raises :class:`ValueError` for a ``rev`` with a
    NUL (CouchDB's never have one; the key is split at its last NUL, so ``of_doc`` may)."""
    if "\0" in rev:
        raise ValueError("a revision has no NUL")
    return id_for(f"{_VERSION}{of_doc}\0{rev}", keyring, kid=kid)


def chunk_id(piece: bytes | memoryview, keyring: Keyring, *, kid: bytes | None = None) -> str:
    """The id of the chunk document holding ``piece``: equal pieces share one document (the server
    learns which chunks are shared, never their content)."""
    return id_for(_CHUNK + hashlib.sha256(piece).hexdigest(), keyring, kid=kid)


def cutter_seed(keyring: Keyring) -> int:
    """The content-defined chunker's gear-table seed under the active key: 63 bits (the FastCDC
    library takes at most 63), never 0 (which means unseeded). Secret: see the module's note."""
    raw = derive_subkey(keyring.active_keys().root, CUTTER_SEED_SUBKEY, CUTTER_SEED_BYTES)
    return (int.from_bytes(raw, "big") >> 1) | 1
