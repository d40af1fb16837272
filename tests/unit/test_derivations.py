"""encryption_plugin.derivations: no derivation's value is another's, and JS agrees with Python.

The ids are MACs, so two of them meet only when their natural keys do (or by a 128-bit MAC
collision). The inputs below are therefore drawn to *spell* the other derivations' natural keys
("version\\0d\\0r" as a path, a folder's path with its "/" as a file's, "chunk\\0<hex>" as a path),
so a label that stopped keeping two purposes apart would be found here. The cutter seed is drawn
from a subkey of its own; the old one was made from the id of the path ``chunk cut points``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from encryption_plugin import Keyring, derivations

ROOT = Path(__file__).resolve().parents[2]
JS_DERIVATIONS = ROOT / "encryption_plugin" / "js" / "src" / "derivations.js"
KEYRING = Keyring("notes", bytes(range(32)))

# Characters Python's Unicode tables know (unassigned ones could normalise differently under
# Node's newer tables, which is no disagreement of ours).
TEXT = st.text(st.characters(exclude_categories=("Cs", "Cn")), max_size=24)


def seed_made_the_old_way(doc_id: str) -> int:
    """How the cutter seed was made from an id before it had a label of its own."""
    digest = hashlib.sha256(doc_id.encode("ascii")).digest()
    return (int.from_bytes(digest[:8], "big") >> 1) | 1


def made(fn: Any, calls: Any) -> set[str]:
    """The values ``fn`` derives for each argument tuple in ``calls``, leaving out refused ones."""
    out = set()
    for args in calls:
        try:
            out.add(fn(*args, KEYRING))
        except ValueError:
            continue
    return out


def test_the_cutter_seed_is_not_made_from_the_id_of_the_file_chunk_cut_points() -> None:
    path = derivations.path_id("chunk cut points", KEYRING)
    assert derivations.cutter_seed(KEYRING) != seed_made_the_old_way(path)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(base=TEXT, of_doc=TEXT, rev=TEXT, piece=st.binary(max_size=64))
def test_no_derivation_gives_another_ones_value(
    base: str, of_doc: str, rev: str, piece: bytes
) -> None:
    chunk_key = "chunk\0" + hashlib.sha256(piece).hexdigest()
    spellings = {
        base,
        base + "/",
        base.rstrip("/"),
        unicodedata.normalize("NFD", base),
        f"version\0{of_doc}\0{rev}",
        chunk_key,
        chunk_key + "/",
        "chunk cut points",
    }
    pairs = {(of_doc, rev), (base, rev), (of_doc, base), (base + "\0" + of_doc, rev)}
    by_kind = {
        "path": made(derivations.path_id, [(s,) for s in spellings]),
        "folder": made(derivations.folder_id, [(s,) for s in spellings]),
        "version": made(derivations.version_id, pairs),
        "chunk": made(derivations.chunk_id, [(piece,), (base.encode(),)]),
    }
    kinds = list(by_kind)
    for i, one in enumerate(kinds):
        for other in kinds[i + 1 :]:
            assert not by_kind[one] & by_kind[other], (one, other)
    every_id = set().union(*by_kind.values())
    seed = derivations.cutter_seed(KEYRING)
    assert seed not in {seed_made_the_old_way(i) for i in every_id}


NODE_SCRIPT = """
import { readFileSync } from 'node:fs';
import { Keyring } from './keys.js';
import * as d from './derivations.js';
const input = JSON.parse(readFileSync(0, 'utf8'));
const hex = (h) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
const keyring = new Keyring(input.app_id, hex(input.root));
const tried = (fn) => {
  try { return fn(); } catch (e) { if (e instanceof TypeError) return null; throw e; }
};
process.stdout.write(JSON.stringify({
  paths: input.paths.map((p) => tried(() => d.pathId(p, keyring))),
  folders: input.paths.map((p) => tried(() => d.folderId(p, keyring))),
  versions: input.versions.map(([o, r]) => tried(() => d.versionId(o, r, keyring))),
  chunks: input.pieces.map((p) => d.chunkId(hex(p), keyring)),
  seed: d.cutterSeed(keyring).toString(),
}));
"""


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    app_id=st.from_regex(r"[a-z0-9.-]{1,64}", fullmatch=True),
    root=st.binary(min_size=32, max_size=32),
    paths=st.lists(
        st.one_of(TEXT, TEXT.map(lambda t: t + "/"), TEXT.map(lambda t: t + "\0")), max_size=12
    ),
    versions=st.lists(st.tuples(TEXT, TEXT), max_size=6),
    pieces=st.lists(st.binary(max_size=300), max_size=6),
)
def test_python_and_javascript_derive_the_same_values(
    app_id: str, root: bytes, paths: list[str], versions: list[tuple[str, str]], pieces: list[bytes]
) -> None:
    node = shutil.which("node")
    assert node, "node is not on PATH (Node 20 is required)"
    keyring = Keyring(app_id, root)

    def tried(fn: Any, *args: Any) -> str | None:
        try:
            value: str = fn(*args, keyring)
        except ValueError:
            return None
        return value

    sent = {
        "app_id": app_id,
        "root": root.hex(),
        "paths": paths,
        "versions": versions,
        "pieces": [p.hex() for p in pieces],
    }
    result = subprocess.run(
        [node, "--input-type=module", "-e", NODE_SCRIPT],
        cwd=JS_DERIVATIONS.parent,
        input=json.dumps(sent),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == {
        "paths": [tried(derivations.path_id, p) for p in paths],
        "folders": [tried(derivations.folder_id, p) for p in paths],
        "versions": [tried(derivations.version_id, o, r) for o, r in versions],
        "chunks": [derivations.chunk_id(p, keyring) for p in pieces],
        "seed": str(derivations.cutter_seed(keyring)),
    }
