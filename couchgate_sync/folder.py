"""The folder on disk: scanning it, and writing into it atomically and only inside it.

A remote change lands as a temporary file in the same directory, fsynced, then ``os.replace``d
over the target: a reader sees the old note or the new one, never half of one. Paths from the
server are checked to stay inside the folder (a path is data from another device, and a broken
or hostile one must not write elsewhere).

Paths are synced in NFC, but a name on disk keeps whatever form it was saved in (Linux stores
bytes: an NFD name stays NFD). Every read, stat, write and removal of a synced path therefore
goes through :func:`locate`, which finds the entry on disk whose normalized name is the synced
one, so such a file is neither duplicated under its NFC name nor written twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import changes
from .ignore import TEMP_PREFIX, Ignore
from .notes import normalize


@dataclass(frozen=True)
class Seen:
    """A file as the scan found it (the hash only when asked for)."""

    path: str
    size: int
    mtime_ns: int


class UnsafePath(ValueError):
    pass


class FolderMissing(FileNotFoundError):
    """The synced folder itself is gone (moved, deleted, an unplugged drive): nothing is
    recorded as deleted and nothing is written until it is back."""

    def __init__(self) -> None:
        super().__init__("the folder is missing (unmounted or moved?)")


def require(root: Path) -> None:
    if not root.is_dir():
        raise FolderMissing()


@dataclass(frozen=True)
class Listing:
    """What a scan found: the synced files, the synced directories, and those of them with
    nothing synced in them (no file, no directory), each by normalized relative path."""

    files: dict[str, Seen]
    empty_dirs: frozenset[str]
    dirs: frozenset[str]


def scan(root: Path, ignore: Ignore) -> dict[str, Seen]:
    """Every synced regular file under ``root``, by normalized relative path."""
    return walk(root, ignore).files


def walk(root: Path, ignore: Ignore) -> Listing:
    """The synced files and empty directories under ``root``.

    Removes this client's temporary files on the way: one found here is what a write cut short
    (kill -9, power loss) left behind, since no write runs while the folder is scanned.
    """
    found: dict[str, Seen] = {}
    empty: set[str] = set()
    dirs: set[str] = set()
    _walk(root, os.fspath(root), ignore, found, empty, dirs)
    return Listing(found, frozenset(empty), frozenset(dirs))


def _walk(
    root: Path, top: str, ignore: Ignore, found: dict[str, Seen], empty: set[str], dirs: set[str]
) -> None:
    """:func:`walk` of the directory ``top`` (``root`` or inside it), into the three."""
    for dirpath, dirnames, filenames in os.walk(top):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else normalize(rel_dir) + "/"
        if rel_dir:
            dirs.add(rel_dir[:-1])
        dirnames[:] = [
            d
            for d in dirnames
            if not ignore.matches(rel_dir + normalize(d) + "/")
            and not os.path.islink(os.path.join(dirpath, d))  # symbolic links are not synced
        ]
        before = len(found)
        for name in filenames:
            if name.startswith(TEMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(dirpath, name))
                continue
            rel = rel_dir + normalize(name)
            if ignore.matches(rel):
                continue
            try:
                st = os.stat(os.path.join(dirpath, name), follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not _is_regular(st.st_mode):
                continue
            found[rel] = Seen(rel, st.st_size, st.st_mtime_ns)
        if rel_dir and not dirnames and len(found) == before:
            empty.add(rel_dir[:-1])


@dataclass(frozen=True)
class Looked:
    """What :func:`look` found: the listing of the paths looked at, and those paths (synced
    form), each standing for itself and everything inside it."""

    listing: Listing
    tops: list[str]


def look(root: Path, paths: Collection[str], ignore: Ignore) -> Looked:
    """:func:`walk` of only ``paths`` (folder-relative, ``/``-separated, as the OS named them):
    a file is looked at, a directory walked; one that is gone is found absent, with everything
    that was inside it. A path under a directory that is gone, a link or ignored stands for that
    directory (so what it held is accounted for, as a full walk would). Each path's parent
    directory is listed too, only to say whether it is empty now (its last file deleted: an
    empty folder, as :func:`walk` says); its other files are not looked at.
    """
    found: dict[str, Seen] = {}
    empty: set[str] = set()
    dirs: set[str] = set()
    tops = changes.roots(_top(root, path, ignore) for path in paths)
    for top in tops:
        full = os.path.join(root, top)
        rel = normalize(top)
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode) and not ignore.matches(rel + "/"):
            _walk(root, full, ignore, found, empty, dirs)
        elif (
            st is not None
            and _is_regular(st.st_mode)
            and not os.path.basename(top).startswith(TEMP_PREFIX)
            and not ignore.matches(rel)
        ):
            found[rel] = Seen(rel, st.st_size, st.st_mtime_ns)
        parent = top.rpartition("/")[0]
        if parent:
            dirs.add(normalize(parent))
            if not _holds_synced(os.path.join(root, parent), normalize(parent) + "/", ignore):
                empty.add(normalize(parent))
    return Looked(Listing(found, frozenset(empty), frozenset(dirs)), [normalize(t) for t in tops])


def _top(root: Path, path: str, ignore: Ignore) -> str:
    """``path``, or the directory above it that is gone, not a directory (a link, a file) or
    ignored: what a change at ``path`` stands for (see :func:`look`)."""
    parts = path.split("/")
    here = os.fspath(root)
    for depth in range(1, len(parts)):
        here = os.path.join(here, parts[depth - 1])
        head = "/".join(parts[:depth])
        try:
            mode = os.lstat(here).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return head
        if not stat.S_ISDIR(mode) or ignore.matches(normalize(head) + "/"):
            return head
    return path


def _holds_synced(directory: str, rel_dir: str, ignore: Ignore) -> bool:
    """Whether ``directory`` holds a synced file or directory (not empty as :func:`walk`
    counts it); True when it cannot be listed (never taken for an empty folder then)."""
    try:
        entries = os.scandir(directory)
    except OSError:
        return True
    with entries:
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX):
                continue
            rel = rel_dir + normalize(entry.name)
            if entry.is_dir(follow_symlinks=False):
                if not ignore.matches(rel + "/"):
                    return True
            elif entry.is_file(follow_symlinks=False) and not ignore.matches(rel):
                return True
    return False


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


def target(root: Path, rel: str) -> Path:
    """``root / rel``, refusing anything that would leave ``root``."""
    parts = _parts(rel)
    base = os.fspath(root)
    full = os.path.join(base, *parts)
    if _through_link(base, parts) and not _inside(full, base):
        raise UnsafePath("path leaves the folder")
    return Path(full)


def _parts(rel: str) -> list[str]:
    """The names of synced path ``rel``, refusing one that is absolute or climbs (``..``)."""
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise UnsafePath("path leaves the folder")
    return parts


def _inside(path: str, root: str) -> bool:
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def _through_link(root: str, parts: list[str]) -> bool:
    """Whether an existing entry on the way from ``root`` down ``parts`` is a symbolic link:
    with no ``..`` in them, only a link can lead outside ``root``. A few ``lstat`` calls,
    where resolving both paths took several per component of each, for every file a scan
    reads or a pull writes."""
    here = root
    for part in parts:
        here = os.path.join(here, part)
        try:
            mode = os.lstat(here).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return False  # nothing below a missing entry exists
        if stat.S_ISLNK(mode):
            return True
    return False


# The ASCII characters that are the NFC form of another character (KELVIN SIGN, GREEK QUESTION
# MARK, GREEK VARIA): an ASCII name without them is spelled one way only, so no directory needs
# listing to find it (tests/sync/test_folder_names.py checks this against all of Unicode).
ASCII_NFC_IMAGES = frozenset("K;`")


def _spelled_one_way(name: str) -> bool:
    return name.isascii() and ASCII_NFC_IMAGES.isdisjoint(name)


def locate(root: Path, rel: str) -> Path:
    """Where synced path ``rel`` is on disk: ``root / rel`` when that exists, else the entry
    whose name normalizes to the same (a name saved in NFD), else ``root / rel`` (new).

    Looking for such an entry lists its directory, so it is done only for a name that has
    another spelling: a first sync writing thousands of new files into one directory would
    otherwise list it once per file (and again per stat), quadratic in the directory's size.
    """
    return Path(_locate(os.fspath(root), rel))


def _locate(root: str, rel: str) -> str:
    """:func:`locate` in plain strings, walking the path once: one ``lstat`` per name looks
    for links on the way (as :func:`target`) and for the first name not there. The files of
    a first sync are each located several times, and ``pathlib`` objects cost more than the
    system calls."""
    parts = _parts(rel)
    full = os.path.join(root, *parts)
    here = root
    literal = True  # ``here`` is still a prefix of ``full`` (no other spelling taken yet)
    linked = False  # an existing entry of that prefix is a link
    for part in parts:
        step = os.path.join(here, part)
        mode = _lstat_mode(step, strict=literal)
        if mode is None:
            if literal and linked and not _inside(full, root):
                raise UnsafePath("path leaves the folder")
            literal = False
            other = None if _spelled_one_way(part) else _other_spelling(here, part)
            if other is None:
                return full
            step = other
        elif literal and stat.S_ISLNK(mode):
            linked = True
        here = step
    if literal:
        if linked and not _inside(full, root):
            raise UnsafePath("path leaves the folder")
        return full
    return here if _inside(here, root) else full


def _lstat_mode(path: str, *, strict: bool) -> int | None:
    """``path``'s mode, not through a final link; None when nothing is there. Other errors
    are raised when ``strict`` (a path being checked for links), else taken as nothing there."""
    try:
        return os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError):
        if strict:
            raise
        return None


def _other_spelling(directory: str, name: str) -> str | None:
    """The entry of ``directory`` whose name normalizes to ``name`` (first in sorted order)."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return None
    same = [n for n in names if normalize(n) == name]
    return os.path.join(directory, sorted(same)[0]) if same else None


def read(root: Path, rel: str) -> bytes | None:
    try:
        with open(_locate(os.fspath(root), rel), "rb") as file:
            return file.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(root: Path, rel: str, data: bytes, mtime_ms: int | None) -> Seen:
    """Write ``data`` to ``rel`` via a temporary file and ``os.replace``; the file as written
    (over the file's name on disk when it has one, so an NFD name is kept)."""
    (result,) = write_batch(root, [Write(rel, data, mtime_ms)])
    if isinstance(result, Exception):
        raise result
    return result


@dataclass(frozen=True)
class Write:
    """One file for :func:`write_batch`: its synced path, its bytes, its mtime (None: now)."""

    rel: str
    data: bytes
    mtime_ms: int | None


# Files fsynced at once: fsyncs issued together share the file system's journal commits, so a
# batch costs about one commit instead of one per file (2,000 files one after another: 9-12 s).
_FSYNC_THREADS = 8
_fsyncs: ThreadPoolExecutor | None = None


def _fsync_all(fds: list[int]) -> None:
    global _fsyncs
    if len(fds) <= 1:
        _fsync_each(fds)
        return
    if _fsyncs is None:
        _fsyncs = ThreadPoolExecutor(_FSYNC_THREADS, thread_name_prefix="couchgate-fsync")
    # A share of the files per thread, not a task per file: as many fsyncs in flight, and a
    # handful of hand-offs between threads instead of one per file.
    shares = [fds[i::_FSYNC_THREADS] for i in range(min(_FSYNC_THREADS, len(fds)))]
    for _ in _fsyncs.map(_fsync_each, shares):  # re-raises the first failure
        pass


def _fsync_each(fds: list[int]) -> None:
    for fd in fds:
        os.fsync(fd)


def write_batch(root: Path, files: list[Write]) -> list[Seen | Exception]:
    """Write many files as one durable step: each to a temporary file beside its target, then
    one barrier (every temporary file fsynced), then each ``os.replace``d into place, then each
    directory touched fsynced once (so the renames, and new directories, survive a crash). A
    crash leaves each file whole or not yet written, never half of one; a caller records state
    only after this returns, so nothing is believed written that is not durable.

    Per file, the file as written, or the error that kept it out (a file standing where a
    directory should be, a name the file system refuses): one file never fails the others. A
    failing barrier (the disk) fails the batch."""
    require(root)  # never make the folder again with files in it: it would read as wiped
    results: list[Seen | Exception] = [UnsafePath("not written")] * len(files)
    base = os.fspath(root)
    staged: list[tuple[int, str, str, int]] = []  # (index, temporary, target, fd)
    made: set[str] = set()  # directories this batch created (their parents gain an entry)
    replaced: set[str] = set()  # temporary files now in place (nothing left to remove)
    try:
        for index, write in enumerate(files):
            try:
                full = _locate(base, write.rel)
                parent = os.path.dirname(full)
                _make_parents(base, parent, made)
                tmp = os.path.join(parent, f"{TEMP_PREFIX}{secrets.token_hex(6)}")
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
                fd = os.open(tmp, flags, 0o644)
            except (OSError, ValueError) as exc:
                results[index] = exc
                continue
            staged.append((index, tmp, full, fd))
            view = memoryview(write.data)
            while view:
                view = view[os.write(fd, view) :]
            if write.mtime_ms:
                ns = write.mtime_ms * 1_000_000
                os.utime(tmp, ns=(ns, ns))
        _fsync_all([fd for *_, fd in staged])
        touched: set[str] = set()
        for index, tmp, full, _ in staged:
            try:
                os.replace(tmp, full)
                replaced.add(tmp)
                st = os.stat(full)
            except OSError as exc:
                results[index] = exc
                continue
            touched.add(os.path.dirname(full))
            results[index] = Seen(files[index].rel, st.st_size, st.st_mtime_ns)
        for directory in _with_made_parents(touched, made):
            _fsync_dir(directory)
        return results
    finally:
        for _, tmp, _, fd in staged:
            with contextlib.suppress(OSError):
                os.close(fd)
            if tmp not in replaced:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)


def _make_parents(root: str, parent: str, made: set[str]) -> None:
    """``mkdir -p parent``, noting each directory it creates."""
    missing: list[str] = []
    here = parent
    while here != root and os.path.dirname(here) != here and not os.path.isdir(here):
        missing.append(here)
        here = os.path.dirname(here)
    for directory in reversed(missing):
        try:
            os.mkdir(directory)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
            continue
        made.add(directory)


def _with_made_parents(touched: set[str], made: set[str]) -> set[str]:
    """The directories whose entries changed: those a file landed in, and the parent of each
    directory made (its new entry)."""
    dirs = set(touched)
    dirs.update(os.path.dirname(directory) for directory in made)
    return dirs


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # a directory cannot be opened on this system (Windows): nothing to sync
        return
    try:
        os.fsync(fd)
    except OSError:
        if os.name != "nt":
            raise
    finally:
        os.close(fd)


def remove(root: Path, rel: str, keep: Collection[str] = ()) -> None:
    """Delete a file, then the directories it leaves empty (up to the folder), except those in
    ``keep`` (synced empty folders: they have documents of their own)."""
    full = locate(root, rel)
    with contextlib.suppress(FileNotFoundError):
        full.unlink()
    _prune(root, full.parent, keep)


# What a file manager leaves in a directory by itself: it does not keep a removed directory.
LITTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def _prune(root: Path, parent: Path, keep: Collection[str]) -> None:
    root_resolved = root.resolve()
    while parent.resolve() != root_resolved:
        if normalize(parent.relative_to(root).as_posix()) in keep or not _rmdir(parent):
            break
        parent = parent.parent


def _rmdir(path: Path) -> bool:
    """Remove an empty directory (file-manager litter aside); whether it is gone. Without
    that, a directory deleted elsewhere would stay here holding a ``.DS_Store``, be seen empty
    by the next scan and come back everywhere as an empty folder."""
    try:
        names = os.listdir(path)
        if names and set(names) <= LITTER:
            for name in names:
                if os.path.isfile(path / name) and not os.path.islink(path / name):
                    os.unlink(path / name)
        path.rmdir()
    except OSError:
        return False
    return True


def move(root: Path, old: str, new: str, keep: Collection[str] = ()) -> Seen:
    """Rename a synced file (``os.replace``: its bytes are not written again), then prune the
    directories it leaves empty as :func:`remove` does; the file as it is now."""
    require(root)
    source = locate(root, old)
    dest = locate(root, new)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, dest)
    _prune(root, source.parent, keep)
    st = dest.stat()
    return Seen(new, st.st_size, st.st_mtime_ns)


def free_for(root: Path, new: str, old: str) -> bool:
    """Whether ``old`` can be renamed to ``new``: nothing there, or ``old`` itself (a change of
    case only, on a case-insensitive folder)."""
    dest = locate(root, new)
    if not os.path.lexists(dest):
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(dest, locate(root, old))
    return False


def make_dir(root: Path, rel: str) -> None:
    require(root)
    locate(root, rel).mkdir(parents=True, exist_ok=True)


def remove_dir(root: Path, rel: str, keep: Collection[str] = ()) -> None:
    """Remove an empty synced folder (one that holds anything stays), and the parents it
    leaves empty."""
    full = locate(root, rel)
    if _rmdir(full):
        _prune(root, full.parent, keep)


def is_dir(root: Path, rel: str) -> bool:
    return locate(root, rel).is_dir()


@dataclass(frozen=True)
class Names:
    """How the folder's file system takes names: whether it tells case apart (macOS and
    Windows do not, by default), and whether its listings show names in the case they were
    written in (they do on macOS and Windows; lowntfs-3g's ``ignore_case``, a way to share an
    NTFS drive with Windows, lists every name in lower case)."""

    case_insensitive: bool
    lists_case: bool


SENSITIVE = Names(case_insensitive=False, lists_case=True)


def probe_names(root: Path) -> Names | None:
    """The folder's :class:`Names`, probed by making a temporary file of a mixed-case name,
    looking for it under its upper-case name and in the listing; None when no file can be made
    there (no folder yet, or read-only: ask again later). ``COUCHGATE_SYNC_CASE_INSENSITIVE=1``
    (or 0) says whether it is case-insensitive instead of probing (listing names as written)."""
    forced = os.environ.get("COUCHGATE_SYNC_CASE_INSENSITIVE", "")
    if forced in ("0", "1"):
        return Names(case_insensitive=forced == "1", lists_case=True)
    probe = root / f"{TEMP_PREFIX}Case-{secrets.token_hex(4)}"
    try:
        probe.touch()
    except OSError:
        return None
    try:
        return Names(
            case_insensitive=os.path.exists(root / probe.name.upper()),
            lists_case=probe.name in os.listdir(root),
        )
    finally:
        probe.unlink()


def case_insensitive(root: Path) -> bool:
    """Whether names in ``root`` are case-insensitive (see :func:`probe_names`; False when
    the folder cannot be asked)."""
    return (probe_names(root) or SENSITIVE).case_insensitive


def as_recorded(listing: Listing, files: Collection[str], dirs: Collection[str]) -> Listing:
    """``listing`` of a case-insensitive folder whose listings lose the case names were written
    in (see :class:`Names`), in the recorded spellings: a listed file that no row has, equal
    but for case to a recorded one that is not listed, is that file; a listed folder equal but
    for case to a recorded one (``dirs``, and the folders of ``files``) is that folder, for new
    files in it too. Else every name written here would come back as a rename to lower case,
    and reach every device. (A rename of case alone cannot be seen on such a folder.)"""
    unlisted = {p.casefold(): p for p in files if p not in listing.files}
    known = set(dirs) | {p.rsplit("/", 1)[0] for p in files if "/" in p}
    for d in list(known):
        known.update(d.rsplit("/", k)[0] for k in range(1, d.count("/") + 1))
    spelled = {d.casefold(): d for d in sorted(known)}

    def dir_as_recorded(path: str) -> str:
        parts = path.split("/")
        for depth in range(len(parts), 0, -1):
            head = "/".join(parts[:depth])
            if (was := spelled.get(head.casefold())) is not None:
                return "/".join([was, *parts[depth:]])
        return path

    found: dict[str, Seen] = {}
    for path, seen in listing.files.items():
        if path not in files:
            was = unlisted.get(path.casefold())
            if was is None and "/" in path:
                head, name = path.rsplit("/", 1)
                was = f"{dir_as_recorded(head)}/{name}"
            if was is not None and was not in listing.files:
                path = was
        found[path] = Seen(path, seen.size, seen.mtime_ns)
    return Listing(
        found,
        frozenset(dir_as_recorded(d) for d in listing.empty_dirs),
        frozenset(dir_as_recorded(d) for d in listing.dirs),
    )


def stat_of(root: Path, rel: str) -> Seen | None:
    try:
        st = os.stat(_locate(os.fspath(root), rel))
    except (FileNotFoundError, NotADirectoryError):
        return None
    return Seen(rel, st.st_size, st.st_mtime_ns)
