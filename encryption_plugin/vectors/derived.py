"""Keyed ids and the derivations of a synced folder (each under its own label)."""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Any

from encryption_plugin import derivations
from encryption_plugin.codec import u32_framed
from encryption_plugin.ids import id_for
from encryption_plugin.keys import derive_subkey
from encryption_plugin.vectors.common import APP, OTHER_APP, ROOTS, keyring


def id_vectors() -> list[dict[str, Any]]:
    ring = keyring(APP, "A")
    other = keyring(OTHER_APP, "A")
    out = []
    for label, ring_, key in [
        ("ascii", ring, "user:alice@example.org"),
        ("nfc", ring, unicodedata.normalize("NFC", "Zo\u00eb")),
        ("nfd-same-as-nfc", ring, unicodedata.normalize("NFD", "Zo\u00eb")),
        ("non-bmp", ring, "\U0001f600 tag"),
        ("other-app", other, "user:alice@example.org"),
    ]:
        message = u32_framed(ring_.app_id.encode()) + unicodedata.normalize("NFC", key).encode()
        out.append(
            {
                "name": label,
                "app_id": ring_.app_id,
                "keys": ["A"],
                "natural_key": key,
                "message": message.hex(),
                "id": id_for(key, ring_),
            }
        )
    return out


def derivation_vectors() -> dict[str, list[dict[str, Any]]]:
    """Each of :mod:`encryption_plugin.derivations` with its natural key (the MAC's message after
    the framed app id) and its value; the seed as a decimal string (63 bits do not fit a JSON
    number everywhere). ``chunk cut points`` is there as a path: its id is not the seed's source."""
    piece = bytes(range(256)) * 3
    chunk_key = "chunk\0" + hashlib.sha256(piece).hexdigest()
    rev = "3-967a00dff5e02add41819138abb3284d"
    cases: list[tuple[str, str, list[str], str, dict[str, str], str]] = [
        (
            "path-ascii",
            APP,
            ["A"],
            "path_id",
            {"path": "Daily/2026-12-01.md"},
            "Daily/2026-12-01.md",
        ),
        (
            "path-nfd",
            APP,
            ["A"],
            "path_id",
            {"path": unicodedata.normalize("NFD", "Zo\u00eb.md")},
            "Zo\u00eb.md",
        ),
        ("path-non-bmp", APP, ["A"], "path_id", {"path": "\U0001f600/tag.md"}, "\U0001f600/tag.md"),
        (
            "path-old-seed-label",
            APP,
            ["A"],
            "path_id",
            {"path": "chunk cut points"},
            "chunk cut points",
        ),
        (
            "path-other-app",
            OTHER_APP,
            ["A"],
            "path_id",
            {"path": "Daily/2026-12-01.md"},
            "Daily/2026-12-01.md",
        ),
        ("folder", APP, ["A"], "folder_id", {"path": "Projects/new"}, "Projects/new/"),
        (
            "folder-nfd",
            APP,
            ["A"],
            "folder_id",
            {"path": unicodedata.normalize("NFD", "Caf\u00e9")},
            "Caf\u00e9/",
        ),
        (
            "version",
            APP,
            ["A"],
            "version_id",
            {"of_doc": "hM_g2s1FtEi8GKffm6KevAA", "rev": rev},
            f"version\0hM_g2s1FtEi8GKffm6KevAA\0{rev}",
        ),
        (
            "version-nul-in-doc",
            APP,
            ["A"],
            "version_id",
            {"of_doc": "a\0b", "rev": "1-c"},
            "version\0a\0b\0001-c",
        ),
        ("chunk", APP, ["A"], "chunk_id", {"piece": piece.hex()}, chunk_key),
        (
            "chunk-empty",
            APP,
            ["A"],
            "chunk_id",
            {"piece": ""},
            "chunk\0" + hashlib.sha256().hexdigest(),
        ),
        ("chunk-rotated", APP, ["B", "A"], "chunk_id", {"piece": piece.hex()}, chunk_key),
    ]
    positive: list[dict[str, Any]] = []
    for name, app, names, function, args, natural_key in cases:
        ring = keyring(app, *names)
        call = [bytes.fromhex(v) if k == "piece" else v for k, v in args.items()]
        value = getattr(derivations, function)(*call, ring)
        assert value == id_for(natural_key, ring), name  # the ids vaults already hold
        positive.append(
            {
                "name": name,
                "function": function,
                "app_id": app,
                "keys": names,
                "args": args,
                "natural_key": natural_key,
                "id": value,
            }
        )
    for name, app, names in [
        ("seed", APP, ["A"]),
        ("seed-other-app", OTHER_APP, ["A"]),
        ("seed-rotated", APP, ["B", "A"]),
    ]:
        ring = keyring(app, *names)
        positive.append(
            {
                "name": name,
                "function": "cutter_seed",
                "app_id": app,
                "keys": names,
                "args": {},
                "subkey": derive_subkey(ROOTS[names[0]], 5, 8).hex(),
                "seed": str(derivations.cutter_seed(ring)),
            }
        )
    negative = [
        {"name": "path-with-nul", "function": "path_id", "args": {"path": "a\0b"}},
        {"name": "path-ending-in-slash", "function": "path_id", "args": {"path": "Projects/new/"}},
        {"name": "folder-ending-in-slash", "function": "folder_id", "args": {"path": "a/"}},
        {"name": "folder-with-nul", "function": "folder_id", "args": {"path": "a\0"}},
        {
            "name": "version-nul-in-rev",
            "function": "version_id",
            "args": {"of_doc": "hx", "rev": "1-a\0"},
        },
    ]
    return {"positive": positive, "negative": negative}
