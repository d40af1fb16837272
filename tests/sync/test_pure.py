"""The pure parts of couchgate-sync: merges, conflict names, paths, ignore rules, the note
format. Properties by hypothesis where a rule is general."""

from __future__ import annotations

import os
import random
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couchgate_sync import changes, chunks, cli, failures, folder, notes, portable_names, sharing
from couchgate_sync.conflicts import conflict_name, three_way
from couchgate_sync.ignore import IGNORE_FILE, TEMP_PREFIX, Ignore
from couchgate_sync.join import pairing_link, parse_pairing
from couchgate_sync.state import FileRow, State
from encryption_plugin import Keyring, is_sealed

KEYRING = Keyring.generate("notes")
lines = st.lists(st.text(alphabet="abcxyz \t", max_size=8).map(lambda s: s + "\n"), max_size=12)


@given(lines, lines)
def test_a_one_sided_edit_merges_to_that_side(base: list[str], edited: list[str]) -> None:
    text, changed = "".join(base), "".join(edited)
    assert three_way(text, changed, text) == changed
    assert three_way(text, text, changed) == changed


@given(
    st.lists(st.text(alphabet="abc", min_size=1, max_size=5), min_size=4, max_size=12), st.data()
)
def test_edits_of_different_lines_keep_both(words: list[str], data: st.DataObject) -> None:
    base = [f"{i} {w}\n" for i, w in enumerate(words)]
    cut = data.draw(st.integers(1, len(base) - 2))
    ours = list(base)
    ours[0] = "ours\n"
    theirs = list(base)
    theirs[data.draw(st.integers(cut + 1, len(base) - 1))] = "theirs\n"
    merged = three_way("".join(base), "".join(ours), "".join(theirs))
    assert merged is not None
    assert "ours\n" in merged and "theirs\n" in merged
    assert len(merged.splitlines()) == len(base)


def test_overlapping_edits_do_not_merge() -> None:
    assert three_way("a\nb\nc\n", "a\nX\nc\n", "a\nY\nc\n") is None
    assert three_way("", "mine\n", "yours\n") is None
    assert three_way("a\n", "same\n", "same\n") == "same\n"


def test_conflict_names_say_whose_and_when_in_utc() -> None:
    when = 1764579600000  # 2025-12-01 09:00 UTC
    assert conflict_name("Daily/today.md", "phone", when) == (
        "Daily/today (conflict from phone 2025-12-01 0900).md"
    )
    assert conflict_name(".env", "a/b:c", when) == ".env (conflict from abc 2025-12-01 0900)"
    assert conflict_name("README", "", when) == (
        "README (conflict from another device 2025-12-01 0900)"
    )


@given(st.binary(max_size=2000))
@settings(max_examples=60)
def test_every_file_round_trips_byte_for_byte(data: bytes) -> None:
    sealed = notes.seal_note(
        "hid", "a/b.md", data, mtime_ms=1, origin="d", created=None, keyring=KEYRING
    )
    assert is_sealed(sealed)
    opened = notes.open_note({**sealed, "_rev": "1-a"}, KEYRING)
    assert opened is not None and opened.data == data and opened.path == "a/b.md"
    assert opened.is_text == (notes.as_text(data) is not None)


def test_sealed_notes_carry_nothing_in_clear() -> None:
    sealed = notes.seal_note(
        "hid",
        "secret/name.bin",
        b"\0secret",
        mtime_ms=1,
        origin="d",
        created=None,
        keyring=KEYRING,
    )
    clear = repr({k: v for k, v in sealed.items() if k != "e2e"})
    assert "secret" not in clear and "name" not in clear
    (stored,) = sealed["_attachments"]
    assert len(stored) == 32 and sealed["_attachments"][stored]["content_type"] == (
        "application/octet-stream"
    )


# A file's path has no NUL and no final "/" (a name ending in "\\" is not synced, see below).
@given(st.text(min_size=1, max_size=30).filter(lambda n: "\0" not in n and n[-1] not in "/\\"))
def test_ids_are_those_of_the_nfc_path(name: str) -> None:
    nfd = unicodedata.normalize("NFD", name)
    assert notes.doc_id_for(nfd, KEYRING) == notes.doc_id_for(
        unicodedata.normalize("NFC", name), KEYRING
    )
    assert not notes.doc_id_for(name, KEYRING).startswith("_")


def test_a_backslash_is_a_character_of_a_name_here(tmp_path: Path) -> None:
    """On Linux and macOS "\\" is no separator: a name holding one syncs as it is (a Windows
    device lists it as a failed item). Read as a separator, ``back\\slash.md`` became a path
    in a folder that does not exist: never synced, and nothing said."""
    (tmp_path / "odd\\").write_text("x")
    (tmp_path / "dir\\").mkdir()
    (tmp_path / "dir\\" / "inside.md").write_text("x")
    (tmp_path / "back\\slash.md").write_text("x")
    (tmp_path / "plain.md").write_text("x")
    listing = folder.walk(tmp_path, Ignore())
    assert set(listing.files) == {"plain.md", "odd\\", "dir\\/inside.md", "back\\slash.md"}
    assert len({notes.doc_id_for(path, KEYRING) for path in listing.files}) == 4
    assert folder.read(tmp_path, "back\\slash.md") == b"x"
    assert portable_names.windows_problem("back\\slash.md") is not None


def test_a_demo_note_without_a_path_gets_a_file_name_from_its_id() -> None:
    assert notes.path_of("2026-12-01T09:00:00.000Z-ab12cd", {"text": "hi"}) == (
        "2026-12-01T09-00-00.000Z-ab12cd.md"
    )
    assert notes.path_of("x", {"path": "Caf\u0065\u0301.md"}) == "Caf\u00e9.md"


@pytest.mark.parametrize(
    "bad", ["../escape.md", "a/../../b", "/etc/passwd", "a//b", "./a", "", "a/./b"]
)
def test_paths_from_the_server_stay_inside_the_folder(tmp_path: Path, bad: str) -> None:
    with pytest.raises(folder.UnsafePath):
        folder.target(tmp_path, bad)


def test_a_symlinked_directory_cannot_lead_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(folder.UnsafePath):
        folder.write_atomic(root, "link/file.md", b"x", None)
    assert not (outside / "file.md").exists()


_NAMES = st.sampled_from(["a", "b", "c"])


@settings(max_examples=60, deadline=None)
@given(
    links=st.lists(
        st.tuples(st.lists(_NAMES, min_size=1, max_size=2), st.sampled_from(["in", "out", "up"])),
        max_size=3,
    ),
    dirs=st.lists(st.lists(_NAMES, min_size=1, max_size=2), max_size=3),
    rel=st.lists(_NAMES, min_size=1, max_size=3),
)
def test_target_refuses_exactly_what_resolving_the_path_would(
    tmp_path_factory: pytest.TempPathFactory,
    links: list[tuple[list[str], str]],
    dirs: list[list[str]],
    rel: list[str],
) -> None:
    """``folder.target`` looks for links with a few ``lstat`` calls instead of resolving the
    path; on trees of directories and links (inside, outside, to the folder's parent), it
    refuses a path exactly when the resolved path is outside the folder."""
    base = tmp_path_factory.mktemp("tree")
    root = base / "root"
    root.mkdir()
    (base / "outside").mkdir()
    (root / "real").mkdir()  # never a link, so links never loop
    for parts in dirs:
        root.joinpath(*parts).mkdir(parents=True, exist_ok=True)
    for parts, where in links:
        at = root.joinpath(*parts)
        if at.parent.is_dir() and not os.path.lexists(at):
            to = {"in": root / "real", "out": base / "outside", "up": base}[where]
            at.symlink_to(to, target_is_directory=True)
    full = root.joinpath(*rel)
    inside = full.resolve().is_relative_to(root.resolve())
    try:
        folder.target(root, "/".join(rel))
        refused = False
    except folder.UnsafePath:
        refused = True
    assert refused == (not inside)


def test_a_batch_write_lands_every_file_it_can_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    """One durable step for many files (apply, bulk restore): a file standing where a folder
    should be keeps out only the file that needs that folder, and the rest are written whole,
    new folders made, with their mtimes."""
    (tmp_path / "blocker").write_bytes(b"a file, not a folder")
    writes = [
        folder.Write("new/deep/a.md", b"a", 1_700_000_000_000),
        folder.Write("blocker/b.md", b"b", None),
        folder.Write("c.md", b"c" * 70_000, 1_700_000_001_000),
    ]
    results = folder.write_batch(tmp_path, writes)
    assert isinstance(results[1], FileExistsError)
    first, third = results[0], results[2]
    assert isinstance(first, folder.Seen) and isinstance(third, folder.Seen)
    assert (first.size, first.mtime_ns) == (1, 1_700_000_000_000 * 1_000_000)
    assert (tmp_path / "new/deep/a.md").read_bytes() == b"a"
    assert (tmp_path / "c.md").read_bytes() == b"c" * 70_000
    assert third.mtime_ns == 1_700_000_001_000 * 1_000_000
    left = [p.name for p in tmp_path.rglob("*") if p.name.startswith(TEMP_PREFIX)]
    assert left == []


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        (".git/config", True),
        ("sub/.git/HEAD", True),
        (".DS_Store", True),
        ("Notes/.DS_Store", True),
        (".obsidian/workspace.json", True),
        (".obsidian/workspace-mobile.json", True),
        (".obsidian/app.json", False),
        ("note.md.swp", True),
        (".note.md.swp", True),
        ("backup.md~", True),
        (".couchgate-tmp-0a1b2c", True),
        ("Daily/2026-12-01.md", False),
        (".couchgateignore", False),
    ],
)
def test_default_ignore_rules(path: str, ignored: bool) -> None:
    assert Ignore().matches(path) is ignored


def test_ignore_file_in_gitignore_syntax(tmp_path: Path) -> None:
    (tmp_path / ".couchgateignore").write_text("build/\n*.log\n!keep.log\n/top.md\n")
    rules = Ignore.for_folder(tmp_path)
    assert rules.matches("build/x.md") and rules.matches("a/build/x.md")
    assert rules.matches("debug.log") and not rules.matches("keep.log")
    assert rules.matches("top.md") and not rules.matches("sub/top.md")


def test_pairing_links_are_the_demo_app_ones() -> None:
    key = KEYRING.export()
    link = pairing_link("https://sync.example.org/", "c0de+/=", key)
    assert link.startswith("https://sync.example.org/demo/#pair=")
    parsed = parse_pairing(link)
    assert parsed is not None and parsed.code == "c0de+/=" and parsed.key == key
    assert parse_pairing(link.split("#", 1)[1]) == parsed
    assert parse_pairing("https://sync.example.org/demo/#enroll=abc") is None


def test_chunks_are_content_addressed_under_the_key_and_round_trip() -> None:
    tail = b"tail"
    assert chunks.chunk_id(tail, KEYRING) == chunks.chunk_id(memoryview(b"tail"), KEYRING)
    assert chunks.chunk_id(tail, KEYRING) != chunks.chunk_id(tail, Keyring.generate("notes"))
    sealed = chunks.seal_chunk("hc", tail, KEYRING)
    assert is_sealed(sealed)
    assert chunks.open_chunk(sealed, KEYRING) == b"tail"


def _noise(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


@given(st.integers(0, 2**32), st.integers(0, 3 * chunks.MAX_BYTES))
@settings(max_examples=25, deadline=None)
def test_chunking_then_joining_gives_the_bytes_back(seed: int, size: int) -> None:
    data = _noise(seed, size)
    cut = list(chunks.pieces(data, KEYRING))
    assert b"".join(cut) == data
    assert all(len(p) <= chunks.MAX_BYTES for p in cut)
    assert all(len(p) >= chunks.MIN_BYTES for p in cut[:-1])


@given(
    st.integers(0, 2**32),
    st.integers(4 * chunks.MAX_BYTES, 6 * chunks.MAX_BYTES),
    st.floats(0, 1),
    st.binary(min_size=1, max_size=4096),
)
@settings(max_examples=25, deadline=None, derandomize=True)
def test_an_insertion_changes_a_bounded_number_of_chunks(
    seed: int, size: int, where: float, inserted: bytes
) -> None:
    data = _noise(seed, size)
    at = int(where * size)
    before = set(chunks.pieces(data, KEYRING))
    after = list(chunks.pieces(data[:at] + inserted + data[at:], KEYRING))
    new = [p for p in after if p not in before]
    # The cuts fall back into step within a few chunks (FastCDC; fixed offsets would change
    # every chunk after the insertion: up to six here).
    assert len(new) <= 3, (len(new), len(after))


def test_cut_points_depend_on_the_key() -> None:
    data = _noise(7, 3 * chunks.MAX_BYTES)
    mine = [len(p) for p in chunks.pieces(data, KEYRING)]
    theirs = [len(p) for p in chunks.pieces(data, Keyring.generate("notes"))]
    assert mine != theirs


def _row(path: str, doc_id: str) -> FileRow:
    return FileRow(path, doc_id, "1-a", 1, 1, "sha")


@pytest.mark.parametrize(
    ("path", "doc_id", "here", "clash"),
    [
        ("README.md", "two", [_row("Readme.md", "one")], True),
        ("Straße/Ä.md", "two", [_row("STRASSE/ä.md", "one")], True),  # casefold, not lower
        ("Readme.md", "one", [_row("README.md", "one")], False),  # its own rename (case only)
        ("Readme.md", "two", [_row("Readme.md", "one")], False),  # the same path: no clash
        ("Readme.md", "two", [_row("Readme2.md", "one"), _row("Docs/readme.md", "x")], False),
        ("README.md", "two", [], False),
        ("notes/b.md", "two", [_row("Notes/a.md", "one")], True),  # two folders would merge
        ("Work/notes/b.md", "two", [_row("Work/Notes/a.md", "one")], True),
        ("work/Notes/b.md", "two", [_row("Work/Notes/a.md", "one")], True),
        ("Notes/b.md", "two", [_row("Notes/a.md", "one")], False),  # the same folder
        ("Notes/b.md", "two", [_row("Other/notes/a.md", "one")], False),  # not the same folder
        ("notes/a.md", "one", [_row("Notes/a.md", "one")], False),  # its own folder, renamed
    ],
)
def test_a_case_clash_is_another_documents_file_of_the_same_name_but_for_case(
    path: str, doc_id: str, here: list[FileRow], clash: bool
) -> None:
    found = failures.case_clash(path, doc_id, here)
    assert (found in (failures.CASE_CLASH, failures.CASE_CLASH_DIR)) if clash else found is None
    if clash:  # a failed item with its reason, as apply records it
        assert failures.reason_of(failures.Unwritable(found or "")) == found


_DIR = st.sampled_from(["a", "A", "ab", "aB", "Straße", "STRASSE"])
_PATH = st.builds(
    lambda dirs, name: "/".join([*dirs, name]),
    st.lists(_DIR, max_size=3),
    st.sampled_from(["x.md", "X.md", "y.md"]),
)


@given(first=_PATH, second=_PATH)
@settings(max_examples=300, deadline=None)
def test_a_case_clash_is_exactly_what_a_case_insensitive_folder_would_merge(
    first: str, second: str
) -> None:
    """Against a model of such a folder: each folder and file of ``first`` is made, then those of
    ``second`` would land on an entry spelled otherwise (a file overwritten, two folders made
    one) exactly when ``case_clash`` says so."""

    def entries(path: str) -> list[str]:
        parts = path.split("/")
        return ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]

    made = {e.casefold(): e for e in entries(first)}
    merged = any(made.get(e.casefold(), e) != e for e in entries(second))
    found = failures.case_clash(second, "two", [_row(first, "one")])
    assert (found is not None) == merged


def test_the_recorded_files_a_clash_is_looked_for_in(tmp_path: Path) -> None:
    """``clashing`` finds, in a real state file, the twin and a file under each folder spelled
    otherwise; and ``case_clash`` over them is the decision apply makes."""
    store = State(tmp_path / "state.sqlite3")
    store.put([_row(p, f"d{i}") for i, p in enumerate(["Notes/a.md", "Work/Straße/c.md", "R.md"])])
    assert [r.path for r in failures.clashing(store, "notes/b.md")] == ["Notes/a.md"]
    assert [r.path for r in failures.clashing(store, "work/STRASSE/d.md")] == ["Work/Straße/c.md"]
    assert [r.path for r in failures.clashing(store, "r.md")] == ["R.md"]
    assert failures.clashing(store, "Notes/b.md") == []
    assert failures.case_clash("notes/b.md", "x", failures.clashing(store, "notes/b.md"))
    store.close()


@pytest.mark.parametrize(
    "argv",
    [
        ["unshare", "-Xy_z9"],
        ["unshare", "-Xy_z9", "--dir", "Notes"],
        ["unshare", "--dir", "Notes", "-Xy_z9"],
        ["-v", "unshare", "--dir=Notes", "-Xy_z9"],
        ["unshare", "--dir", "Notes", "--", "-Xy_z9"],
    ],
)
def test_unshare_takes_a_share_id_that_begins_with_a_dash(argv: list[str]) -> None:
    """Share ids are base64url: one made before ids stopped beginning with "-" is still live."""
    args = cli._parser().parse_args(sharing.id_operand(argv))
    assert args.command == "unshare" and args.id == "-Xy_z9"
    assert str(args.dir) == ("Notes" if "Notes" in " ".join(argv) else ".")


def test_only_unshare_s_id_is_moved() -> None:
    for argv in (["restore", "-x"], ["unshare", "--help"], ["-v", "status", "-d"]):
        assert sharing.id_operand(argv) == argv


def test_where_an_error_happened_never_says_its_message() -> None:
    """``run``'s debug line for an unforeseen error: its type and code lines, never its
    message (an OSError names the file, a ValueError may quote a note)."""
    from couchgate_sync.live import where

    try:
        open("/nonexistent/secret-diary.md")  # noqa: SIM115
    except OSError as exc:
        line = where(exc)
    assert line.startswith("FileNotFoundError at test_pure.py:")
    assert "secret" not in line and "diary" not in line
    assert where(None) == "no error"


@pytest.mark.parametrize(
    ("path", "dirs", "files", "clash"),
    [
        ("drafts", ["Drafts"], [], True),  # two empty folders, one name but for case
        ("drafts", ["drafts"], [], False),  # the same folder
        ("notes", [], ["Notes/a.md"], True),  # a folder of a file, but for case
        ("notes/sub", [], ["Notes/a.md"], True),  # its parent is
        ("Notes/sub", [], ["Notes/a.md"], False),  # inside the very same folder
        ("other", ["Drafts"], ["Notes/a.md"], False),
        ("Ä", ["ä"], [], True),  # not ASCII only
    ],
)
def test_an_empty_folder_that_would_merge_with_another_is_a_clash(
    path: str, dirs: list[str], files: list[str], clash: bool
) -> None:
    here = [FileRow(p, f"id-{p}", "1-a", 1, 1, "0" * 64) for p in files]
    found = failures.folder_case_clash(path, dirs, here)
    assert (found == failures.CASE_CLASH_DIR) if clash else found is None


segments = st.sampled_from(["a", "b", "a.b", "a-", "é", "0"])
rel_paths = st.lists(segments, min_size=1, max_size=4).map("/".join)


@given(st.lists(rel_paths, max_size=12))
def test_changed_roots_cover_every_path_once(paths: list[str]) -> None:
    """A partial scan looks at the fewest paths covering every change: none inside another,
    each change at or under one of them, each of them a change."""
    tops = changes.roots(paths)
    assert set(tops) <= set(paths)
    assert all(any(changes.under(p, t) for t in tops) for p in paths)
    assert not [(t, u) for t in tops for u in tops if t != u and changes.under(t, u)]


@given(st.lists(rel_paths, max_size=12), st.lists(rel_paths, max_size=4))
def test_the_rows_a_change_touches(recorded: list[str], tops: list[str]) -> None:
    """A row is touched by a change at its path or at a directory above it; never by a
    sibling that merely starts the same (``a-`` is not inside ``a``)."""
    touched = changes.touched(recorded, tops)
    for path in recorded:
        above = ["/".join(path.split("/")[:k]) for k in range(1, path.count("/") + 2)]
        assert (path in touched) == any(t in above for t in tops)


@settings(max_examples=30, deadline=None)
@given(st.lists(rel_paths, max_size=12, unique=True), st.lists(rel_paths, max_size=4))
def test_the_state_file_reads_the_rows_a_change_touches(
    tmp_path_factory: pytest.TempPathFactory, recorded: list[str], tops: list[str]
) -> None:
    """The state file's range query (``files_under``) finds exactly the rows
    :func:`changes.touched` says (``0`` sorts after ``/``, ``-`` and ``.`` before it)."""
    state = State(tmp_path_factory.mktemp("state") / "state.sqlite3")
    try:
        state.put([FileRow(p, p, "1-a", 1, 1, "s") for p in recorded])
        assert set(state.files_under(changes.roots(tops))) == changes.touched(recorded, tops)
        assert state.count_files() == len(recorded)
    finally:
        state.close()


@given(
    st.lists(st.one_of(st.none(), st.frozensets(rel_paths, max_size=5)), max_size=8),
    st.integers(1, 12),
)
def test_bursts_merge_into_everything_past_the_bound(
    bursts: list[frozenset[str] | None], most: int
) -> None:
    """Bursts gathered between cycles: their union while it stays within ``most`` paths, else
    everything; everything once any burst was everything. Never more than ``most`` paths."""
    gathered: changes.Changed = changes.NOTHING
    for burst in bursts:
        gathered = changes.merge(gathered, burst, most)
    union: set[str] = set()
    for burst in bursts:
        union |= burst or set()
    if None in bursts or len(union) > most:
        assert gathered is changes.EVERYTHING
    else:
        assert gathered == frozenset(union)
    assert gathered is None or len(gathered) <= most


def test_a_change_to_the_ignore_file_wants_a_full_scan() -> None:
    assert changes.wants_everything({"notes/a.md", IGNORE_FILE})
    assert not changes.wants_everything({"notes/.couchgateignore", "a.md"})


@given(st.one_of(st.none(), st.frozensets(rel_paths, max_size=8)), st.lists(rel_paths, max_size=3))
def test_the_client_s_own_directories_are_left_out_of_a_burst(
    burst: frozenset[str] | None, own: list[str]
) -> None:
    kept = changes.outside(burst, own)
    if burst is None:
        assert kept is None
    else:
        assert kept == frozenset(p for p in burst if not any(changes.under(p, o) for o in own))
