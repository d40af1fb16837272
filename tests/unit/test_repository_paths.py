"""Nothing in the repository refers to a file outside it: someone who clones it has only what
``git ls-files`` lists, so a pointer to the team's workspace, a home directory or a machine's
own paths is a dead end for them (and leaks where it was written)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

REPO = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve().relative_to(REPO).as_posix()  # it spells the patterns out

OUTSIDE = {
    "the team's shared workspace": re.compile(
        r"\.\./shared\b|/work/|\b(ENVELOPE|DESIGN|STYLE)\.md\b"
    ),
    "a home directory": re.compile(
        r"/home/[A-Za-z0-9_.-]+|/Users/[A-Za-z0-9_.-]+|/root/|[A-Z]:\\Users\\"
    ),
    "this machine's temporary files": re.compile(r"(?<![\w.])/tmp/[A-Za-z0-9_.-]"),
}
# CI's entry point may name the one thing this workplace keeps beside every checkout for CI: the
# Apache CouchDB release it starts (and it runs without it, see .ci/run).
ALLOWED = {(".ci/run", "../shared/couchdb")}
# A Markdown link to a relative target: [text](path) or [text](path#anchor).
MD_LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s]+)\)")


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    return [name for name in listed.split("\0") if name]


def _text(name: str) -> str | None:
    data = (REPO / name).read_bytes()
    if b"\0" in data[:8192]:
        return None  # binary (screenshots)
    return data.decode("utf-8", "replace")


def test_no_tracked_file_names_a_path_outside_the_repository() -> None:
    files = tracked_files()
    assert "README.md" in files and len(files) > 100
    found = []
    for name in files:
        text = None if name == THIS else _text(name)
        for what, pattern in OUTSIDE.items() if text else ():
            assert text is not None
            for match in pattern.finditer(text):
                if any(
                    name == where and text.startswith(what, match.start())
                    for where, what in ALLOWED
                ):
                    continue
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{name}:{line}: {match.group(0)!r} ({what})")
    assert found == []


def test_every_relative_markdown_link_is_a_tracked_file() -> None:
    files = set(tracked_files())
    broken = []
    for name in sorted(f for f in files if f.endswith(".md")):
        text = _text(name) or ""
        for match in MD_LINK.finditer(text):
            target = unquote(match.group(1).split("#")[0])
            resolved = (REPO / name).parent / target
            try:
                inside = resolved.resolve().relative_to(REPO).as_posix()
            except ValueError:
                broken.append(f"{name}: {match.group(1)} (outside the repository)")
                continue
            if inside not in files and not any(f.startswith(inside + "/") for f in files):
                broken.append(f"{name}: {match.group(1)} (not in the repository)")
    assert broken == []
