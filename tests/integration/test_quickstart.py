"""The quick starts run as written: the README's (``couchgate serve``, ``couchgate users add``,
then two devices of one person sync a sealed note through it), docs/quickstart-app.md's (a
PouchDB app with the encryption plugin, a second device paired by link code) and
docs/quickstart-rxdb.md's (the same with RxDB on Dexie and RxDB's own replication).

The commands are taken from the files, from the code blocks marked ``<!-- quickstart -->``,
``<!-- quickstart-app -->`` and ``<!-- quickstart-rxdb -->``, and run by bash against a fresh
data directory, with two substitutions a test needs: a free port instead of 5980, and small
stand-ins for ``pip`` and ``npm`` (the tests already run from this checkout and have the npm
packages; they check their arguments and link those copies rather than downloading).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

import encryption_plugin as ep
from tests.integration.test_e2e_encryption import run_e2e
from tests.upstreams import free_port

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
APP_GUIDE = REPO / "docs" / "quickstart-app.md"
RXDB_GUIDE = REPO / "docs" / "quickstart-rxdb.md"
NODE_MODULES = REPO / "tests" / "js" / "node_modules"
READY_WAIT_S = 60
_BLOCK = re.compile(r"<!-- (quickstart[^>]*) -->\n```(\w+)\n(.*?)```", re.S)

PIP = """#!/bin/sh
# Stands in for `pip install .`: the test already imports this very checkout.
[ "$*" = "install ." ] && [ -f pyproject.toml ] || { echo "unexpected: pip $*" >&2; exit 1; }
"""
COUCHGATE = f"""#!/bin/sh
PYTHONPATH={REPO} exec {sys.executable} -m gateway "$@"
"""
NPM = f"""#!/bin/sh
# Stands in for npm: `init -y` writes a package.json; `install` links the copies the tests have.
set -e
case "$1" in
  init) echo '{{"name": "notes-app", "type": "module"}}' > package.json ;;
  install)
    shift
    for pkg in "$@"; do
      case "$pkg" in
        */*) name=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["name"])' \\
               "$pkg/package.json")
             mkdir -p "node_modules/$(dirname "$name")"
             ln -s "$(cd "$pkg" && pwd)" "node_modules/$name" ;;
        *) mkdir -p node_modules; ln -s "{NODE_MODULES}/$pkg" "node_modules/$pkg" ;;
      esac
    done ;;
  *) echo "unexpected: npm $*" >&2; exit 1 ;;
esac
"""


def quickstart_blocks(path: Path, marker: str) -> list[tuple[str, str, str]]:
    """``(marker line, language, code)`` of every block marked ``<!-- marker... -->``."""
    found = [m.groups() for m in _BLOCK.finditer(path.read_text())]
    return [(mark, lang, code) for mark, lang, code in found if mark.split()[0] == marker]


@dataclass
class Shell:
    """bash with the stand-ins first on PATH, and couchgate's settings for a fresh install."""

    root: Path
    port: int

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COUCHGATE_")}
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{env['PATH']}"
        env["COUCHGATE_DATA_DIR"] = str(self.root / "data")
        env["COUCHGATE_PORT"] = str(self.port)
        return env

    def script(self, code: str) -> str:
        return code.replace("127.0.0.1:5980", f"127.0.0.1:{self.port}")

    async def start(self, code: str, cwd: Path, log: Path) -> asyncio.subprocess.Process:
        with log.open("wb") as out:
            return await asyncio.create_subprocess_exec(
                "bash",
                "-c",
                self.script(code),
                cwd=cwd,
                env=self.env,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )

    async def run(self, code: str, cwd: Path) -> str:
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            "set -euo pipefail\n" + self.script(code),
            cwd=cwd,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, f"{code}\n--- out\n{out.decode()}\n--- err\n{err.decode()}"
        return out.decode()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Shell, str]]:
    """The README's first block (`pip install . && couchgate serve`), run until it says ready;
    yields the shell and the address it announced."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {"pip": PIP, "couchgate": COUCHGATE, "npm": NPM}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    shell = Shell(tmp_path, free_port())
    (serve,) = [code for _, _, code in quickstart_blocks(README, "quickstart") if "serve" in code]
    log = tmp_path / "serve.log"
    proc = await shell.start(serve, REPO, log)
    try:
        address = await _announced(log, proc)
        yield shell, address
    finally:
        os.killpg(proc.pid, 15)
        await proc.wait()


def _text(path: Path) -> str:
    return path.read_text(errors="replace")


async def _announced(log: Path, proc: asyncio.subprocess.Process) -> str:
    """The address `couchgate serve` says it is ready at (waiting for it to say so)."""
    for _ in range(READY_WAIT_S * 20):
        match = re.search(r"is ready at (\S+)/ ", _text(log))
        if match:
            return match.group(1)
        assert proc.returncode is None, _text(log)
        await asyncio.sleep(0.05)
    raise AssertionError(f"couchgate serve never said it was ready:\n{_text(log)}")


async def _post(url: str, body: object = None, token: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as resp,
    ):
        answer = await resp.json()
        assert resp.status == 201, answer
        return dict(answer)


async def test_the_readme_quick_start_syncs_two_devices(
    served: tuple[Shell, str], tmp_path: Path
) -> None:
    shell, address = served
    assert address == f"http://127.0.0.1:{shell.port}"
    (invite,) = [code for _, _, code in quickstart_blocks(README, "quickstart") if "users" in code]
    printed = await shell.run(invite, REPO)
    link = re.search(r"^link: (\S+)$", printed, re.M)
    assert link, printed
    assert "█" in printed  # --qr draws the link

    # The link opens the demo, which redeems the code in its fragment for a device token.
    parts = urlsplit(link.group(1))
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{address}/demo/"
    code = parts.fragment.removeprefix("enroll=")
    laptop = await _post(f"{address}/auth/enroll", {"code": code, "device": "laptop"})
    # The laptop makes the key and writes a note: real PouchDB, sealed by the plugin.
    key = ep.Keyring.generate("notes").export()
    note = {"_id": "note-1", "text": "Buy oat milk"}
    remote = {"url": f"{address}/db/notes", "token": laptop["token"], "key": key}
    pushed = await run_e2e("push", remote=remote, docs=[note])
    assert pushed["result"]["replication"]["docs_written"] == 1, pushed

    # "Pair another device": a link code from the laptop, redeemed by the phone, the key beside.
    pairing = await _post(f"{address}/auth/link", token=laptop["token"])
    phone = await _post(f"{address}/auth/link/redeem", {"code": pairing["code"], "device": "phone"})
    assert phone["user"] == laptop["user"]
    pulled = await run_e2e("pull", remote={**remote, "token": phone["token"]})
    assert [(d["_id"], d["text"]) for d in pulled["result"]["docs"]] == [("note-1", "Buy oat milk")]
    assert pulled["e2e_errors"] == []
    _assert_only_ciphertext_stored(tmp_path / "data", b"Buy oat milk")


async def _run_app_guide(shell: Shell, tmp_path: Path, guide: Path, marker: str, npm: str) -> None:
    """Run an app guide's marked blocks in order (files saved where the shell stands), as
    someone following it would; the second device must print the first one's note."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "couchgate").symlink_to(REPO)  # "the project sits next to the checkout"
    steps = []
    for mark, lang, code in quickstart_blocks(guide, marker):
        if lang == "sh":
            steps.append(code)
        else:  # a file to save: written where the steps before it left the shell
            name = mark.split("file=")[1]
            steps.append(f"cat > {name} <<'QUICKSTART_EOF'\n{code}QUICKSTART_EOF\n")
    assert len(steps) >= 4
    assert any(npm in step for step in steps), "the install step is part of what runs"
    printed = await shell.run("\n".join(steps), work)
    assert "note Buy oat milk\n" in printed, printed
    assert re.search(r"^fingerprint [0-9A-F]{4}(-[0-9A-F]{4}){3}$", printed, re.M), printed
    _assert_only_ciphertext_stored(tmp_path / "data", b"Buy oat milk")


async def test_the_app_quick_start_runs_as_written(
    served: tuple[Shell, str], tmp_path: Path
) -> None:
    npm = "npm install pouchdb pouchdb-adapter-memory ../couchgate/encryption_plugin/js"
    await _run_app_guide(served[0], tmp_path, APP_GUIDE, "quickstart-app", npm)


async def test_the_rxdb_quick_start_runs_as_written(
    served: tuple[Shell, str], tmp_path: Path
) -> None:
    npm = "npm install rxdb rxjs fake-indexeddb ../couchgate/encryption_plugin/js"
    await _run_app_guide(served[0], tmp_path, RXDB_GUIDE, "quickstart-rxdb", npm)


def _assert_only_ciphertext_stored(data_dir: Path, plaintext: bytes) -> None:
    files = [path for path in data_dir.rglob("*") if path.is_file()]
    assert files
    for path in files:
        assert plaintext not in path.read_bytes(), f"plaintext in {path.name}"
