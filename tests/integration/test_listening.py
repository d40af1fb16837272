"""``couchgate users add`` in another terminal prints a link to where ``couchgate serve`` really
listens, with no ``public_url`` configured: serve records its address in its data directory for
as long as it runs. Real processes: a served couchgate on a port of its own, and the CLI."""

from __future__ import annotations

from pathlib import Path

from tests.served import Server, serve_env, users_add
from tests.upstreams import free_port


async def _users_add(data_dir: Path) -> str:
    """The link of ``couchgate users add`` run with the data directory alone (no port)."""
    added = await users_add(serve_env(COUCHGATE_DATA_DIR=str(data_dir)), "ana@example.org")
    return added["link"]


async def test_users_add_links_to_the_port_serve_listens_on(tmp_path: Path) -> None:
    served = Server(tmp_path / "data", free_port())
    await served.start()
    try:
        link = await _users_add(served.data_dir)
        assert link.startswith(f"{served.url}/demo/#enroll="), link
    finally:
        await served.terminate()
    assert not (served.data_dir / "listening.json").exists()  # only while it runs
    link = await _users_add(served.data_dir)
    assert link.startswith("http://127.0.0.1:5980/demo/#enroll="), link  # the default, then
