"""The real PouchDB client (Node, ``pouchdb_driver.mjs``) replicating straight against the store."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.store.conftest import fresh_db_name
from tests.store.helpers import DRIVER, StoreProcess, running_store
from tests.upstreams import JS_DIR, Upstream

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (JS_DIR / "node_modules" / "pouchdb").exists(),
    reason="needs Node and tests/js/node_modules",
)


def drive(scenario: str, db_url: str, user: str, password: str, count: int = 1000) -> Any:
    done = subprocess.run(
        ["node", str(DRIVER), scenario, db_url, user, password, str(count)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def store_process(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running_store(tmp_path_factory.mktemp("pouchdb-store")) as store:
        yield store


def test_push_and_pull_1000_docs_with_attachments(store_process: StoreProcess) -> None:
    result = drive(
        "pushpull", store_process.url + "/pushpull", store_process.user, store_process.password
    )
    assert result["pushed"] == result["pulled"] == result["doc_count"] == 1000
    assert result["attachment"] == "attachment 50 " * 20
    assert result["digests_match"]


def test_live_sync_between_two_clients(store_process: StoreProcess) -> None:
    result = drive("live", store_process.url + "/live", store_process.user, store_process.password)
    # A longpoll feed wakes on commit: each change reaches the other client well under a second.
    assert max(result["latencies"]) < 1000


def test_conflicting_offline_edits_converge(store_process: StoreProcess) -> None:
    result = drive(
        "conflicts", store_process.url + "/conflicts", store_process.user, store_process.password
    )
    assert len(set(result["winners"])) == 1
    assert result["conflicts"][0] == result["conflicts"][1] == result["conflicts"][2]
    assert len(result["conflicts"][0]) == 1
    assert result["resolved_conflicts"] == []


def test_the_same_conflict_scenario_on_the_reference(upstream: Upstream) -> None:
    """Same driver against the reference server: both servers pick the same kind of outcome."""
    if upstream.user is None or upstream.password is None:
        pytest.skip("reference server without admin credentials")
    result = drive(
        "conflicts",
        f"{upstream.url}/{fresh_db_name('conflicts')}",
        upstream.user,
        upstream.password,
    )
    assert len(set(result["winners"])) == 1 and len(result["conflicts"][0]) == 1
