"""Real CouchDB-compatible servers for the integration tests.

Apache CouchDB is the reference. The first way to one that applies: ``COUCHDB_URL`` (any real
CouchDB; credentials in the URL or in ``COUCHDB_USER`` / ``COUCHDB_PASSWORD``, secrets in
``COUCHDB_JWT_SECRET`` and ``COUCHDB_PROXY_SECRET``); a CouchDB release started on loopback by
``couchdb-test-server`` (``COUCHDB_TEST_SERVER`` names the script, or it is on ``PATH``) with the
project's own ``deploy/couchdb/local.ini``; a ``couchdb:3`` container through testcontainers when a
Docker engine answers. pouchdb-server from the npm registry (``tests/js``) runs beside it on a free
loopback port. None is mocked. With ``COUCHGATE_REQUIRE_COUCHDB`` set (CI sets it), finding no
CouchDB is an error rather than a skip.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

JS_DIR = Path(__file__).parent / "js"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "couchgate-test-admin"
JWT_SECRET = "couchgate-test-jwt-secret-0123456789abcdef"
PROXY_SECRET = "couchgate-test-proxy-secret-0123456789abcdef"
REPO = Path(__file__).resolve().parent.parent
DEPLOY_INI = REPO / "deploy" / "couchdb" / "local.ini"
CLUSTER_INI = REPO / "deploy" / "couchdb" / "cluster.ini"
# What the tests add to the deployment's settings: the proxy authentication handler, which the
# deployment leaves off (its default is jwt), so the proxy mode can be exercised as well.
TEST_INI = Path(__file__).parent / "couchdb" / "test.ini"


@dataclass(frozen=True)
class Upstream:
    """A running CouchDB-compatible server and how to reach it as its admin."""

    kind: str  # "couchdb" | "pouchdb-server" | "embedded"
    url: str
    user: str | None
    password: str | None
    jwt_secret: str | None = None
    proxy_secret: str | None = None

    @property
    def is_couchdb(self) -> bool:
        return self.kind == "couchdb"

    def admin_headers(self) -> dict[str, str]:
        if self.user is None or self.password is None:
            return {}
        raw = f"{self.user}:{self.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def request(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        """A blocking admin request, for test set-up and for peeking at what is stored. Asks for
        JSON: CouchDB answers ``multipart/related`` to ``?attachments=true`` otherwise."""
        data = None if body is None else json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            **self.admin_headers(),
        }
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"upstream at {url} did not come up") from None
            time.sleep(0.1)


@contextlib.contextmanager
def pouchdb_server() -> Iterator[Upstream]:
    """pouchdb-server, in memory, on a free loopback port, with an admin so admin mode is real."""
    binary = JS_DIR / "node_modules" / "pouchdb-server" / "bin" / "pouchdb-server"
    if not binary.exists():
        raise RuntimeError("pouchdb-server is not installed: run `npm ci` in tests/js")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="couchgate-pouchdb-server-")
    log = open(os.path.join(workdir, "stdout.txt"), "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            shutil.which("node") or "node",
            str(binary),
            "--in-memory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url + "/")
        up = Upstream("pouchdb-server", url, ADMIN_USER, ADMIN_PASSWORD)
        anonymous = Upstream("pouchdb-server", url, None, None)
        status, _ = anonymous.request("PUT", f"/_config/admins/{ADMIN_USER}", ADMIN_PASSWORD)
        if status != 200:
            raise RuntimeError(f"could not set pouchdb-server's admin: {status}")
        yield up
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _docker_available() -> bool:
    """Whether a Docker engine answers its ping (the client binary alone is not enough)."""
    if os.environ.get("COUCHGATE_NO_DOCKER"):
        return False
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return True  # a remote engine was named explicitly: let testcontainers try it
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect(host.removeprefix("unix://"))
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b"OK" in sock.recv(4096)
    except OSError:
        return False


_HANDLERS = ", ".join(
    f"{{chttpd_auth, {name}}}"
    for name in (
        "cookie_authentication_handler",
        "jwt_authentication_handler",
        "proxy_authentication_handler",
        "default_authentication_handler",
    )
)
COUCHDB_LOCAL_INI = f"""
[chttpd]
authentication_handlers = {_HANDLERS}
max_http_request_size = 67108864

[couchdb]
max_document_size = 16777216
single_node = true

[jwt_auth]
required_claims = exp

[jwt_keys]
hmac:_default = {base64.b64encode(JWT_SECRET.encode()).decode()}
"""


@contextlib.contextmanager
def couchdb_container() -> Iterator[Upstream]:
    """Apache CouchDB 3 in Docker, configured like docker-compose.yml (JWT on)."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    workdir = tempfile.mkdtemp(prefix="couchgate-couchdb-")
    ini = Path(workdir) / "couchgate.ini"
    ini.write_text(COUCHDB_LOCAL_INI)
    container = (
        DockerContainer("couchdb:3")
        .with_env("COUCHDB_USER", ADMIN_USER)
        .with_env("COUCHDB_PASSWORD", ADMIN_PASSWORD)
        .with_volume_mapping(str(ini), "/opt/couchdb/etc/local.d/couchgate.ini", "ro")
        .with_exposed_ports(5984)
    )
    with container:
        wait_for_logs(container, "Apache CouchDB has started", timeout=120)
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(5984)}"
        _wait_until_up(url + "/_up")
        yield Upstream("couchdb", url, ADMIN_USER, ADMIN_PASSWORD, JWT_SECRET)
    shutil.rmtree(workdir, ignore_errors=True)


def couchdb_from_env() -> Upstream | None:
    raw = os.environ.get("COUCHDB_URL")
    if not raw:
        return None
    parts = urlsplit(raw)
    user = parts.username or os.environ.get("COUCHDB_USER")
    password = parts.password or os.environ.get("COUCHDB_PASSWORD")
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return Upstream(
        "couchdb",
        url,
        user,
        password,
        os.environ.get("COUCHDB_JWT_SECRET"),
        os.environ.get("COUCHDB_PROXY_SECRET"),
    )


def couchdb_test_server() -> Path | None:
    """The script that runs a CouchDB release on loopback, where this machine has one."""
    named = os.environ.get("COUCHDB_TEST_SERVER")
    if named:
        return Path(named) if Path(named).is_file() else None
    found = shutil.which("couchdb-test-server")
    return Path(found) if found else None


@dataclass
class CouchRelease:
    """A CouchDB started by ``couchdb-test-server``: its directory and one Upstream per node."""

    workdir: Path
    inis: tuple[Path, ...]
    nodes: list[Upstream]
    restarted: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def node_dir(self, index: int) -> Path:
        return self.workdir / f"node{index + 1}"

    def node_name(self, index: int) -> str:
        """The Erlang node name couchdb-test-server gives node ``index`` (0-based)."""
        base = urlsplit(self.nodes[0].url).port
        return f"couchdb-{base}-{index + 1}@127.0.0.1"

    def stop_node(self, index: int) -> None:
        """End one node's Erlang VM at once (SIGKILL), as a crash would."""
        marker = str(self.node_dir(index) / "local.ini")
        subprocess.run(["pkill", "-KILL", "-f", "--", marker], check=False)
        deadline = time.monotonic() + 30
        while _port_open(self.nodes[index].url) and time.monotonic() < deadline:
            time.sleep(0.1)

    def start_node(self, index: int) -> None:
        """Start a stopped node again with the configuration ``couchdb-test-server`` wrote for it
        (same name, cookie and data), and wait until it answers."""
        release = self.workdir / "release" / "couchdb"
        nd = self.node_dir(index)
        files = [release / "etc" / "default.ini", nd / "local.ini", *self.inis, nd / "zz-local.ini"]
        env = {
            **os.environ,
            "COUCHDB_ARGS_FILE": str(nd / "vm.args"),
            "COUCHDB_INI_FILES": " ".join(str(f) for f in files),
        }
        log = open(nd / "stdout.log", "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            proc = subprocess.Popen(
                ["setsid", "./bin/couchdb"],
                cwd=release,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        self.restarted.append(proc)
        _wait_until_up(self.nodes[index].url + "/_up", deadline_s=60)


def _port_open(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def couchdb_release(
    *, nodes: int = 1, inis: tuple[Path, ...] | None = None, jwt_secret: str | None = JWT_SECRET
) -> Iterator[CouchRelease]:
    """Apache CouchDB started by ``couchdb-test-server`` in a temporary directory: one node, or a
    joined cluster of ``nodes`` (one Upstream per node, each on its own port). The deployment's
    own ini files are applied, so the tests run CouchDB as production does; ``inis`` replaces
    them, and ``jwt_secret=None`` leaves the JWT key to those files."""
    script = couchdb_test_server()
    if script is None:
        raise RuntimeError("no couchdb-test-server on this machine (COUCHDB_TEST_SERVER, PATH)")
    if inis is None:
        inis = (DEPLOY_INI, TEST_INI) if nodes == 1 else (DEPLOY_INI, CLUSTER_INI, TEST_INI)
    workdir = Path(tempfile.mkdtemp(prefix="couchgate-couchdb-"))
    port = _free_port_run(nodes)
    args = [
        "bash",
        str(script),
        "start",
        str(workdir),
        "--port",
        str(port),
        "--nodes",
        str(nodes),
        "--admin",
        f"{ADMIN_USER}:{ADMIN_PASSWORD}",
        "--proxy-secret",
        PROXY_SECRET,
    ]
    if jwt_secret is not None:
        args += ["--jwt-secret", jwt_secret]
    for ini in inis:
        args += ["--ini", str(ini)]
    release: CouchRelease | None = None
    try:
        for _ in range(3):
            done = subprocess.run(args, capture_output=True, text=True, timeout=180)
            # Its library check (`ldconfig -p | grep -q` under pipefail) fails now and then
            # when grep's early exit ends ldconfig with SIGPIPE: that one is worth a retry.
            if done.returncode == 0 or "missing lib" not in done.stderr:
                break
        if done.returncode != 0:
            raise RuntimeError(f"couchdb-test-server failed: {done.stderr.strip()[-2000:]}")
        release = CouchRelease(
            workdir,
            inis,
            [
                Upstream(
                    "couchdb",
                    f"http://127.0.0.1:{port + i}",
                    ADMIN_USER,
                    ADMIN_PASSWORD,
                    jwt_secret,
                    PROXY_SECRET,
                )
                for i in range(nodes)
            ],
        )
        yield release
    finally:
        subprocess.run(["bash", str(script), "stop", str(workdir)], check=False, timeout=120)
        if release is not None:
            for proc in release.restarted:
                proc.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


def _free_port_run(count: int) -> int:
    """A port P with P .. P+count-1 free, and P+1000+1 .. P+1000+count (Erlang's distribution
    ports, which couchdb-test-server derives from P) free as well."""
    for _ in range(50):
        base = free_port()
        wanted = [base + i for i in range(count)] + [base + 1001 + i for i in range(count)]
        if base + 1001 + count < 65535 and all(_port_free(p) for p in wanted):
            return base
    raise RuntimeError("no run of free ports for CouchDB")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@contextlib.contextmanager
def apache_couchdb() -> Iterator[Upstream | None]:
    """Apache CouchDB, by the first way this machine offers (see the module docstring), or
    None when it offers none."""
    from_env = couchdb_from_env()
    if from_env is not None:
        yield from_env
    elif couchdb_test_server() is not None:
        with couchdb_release() as release:
            yield release.nodes[0]
    elif _docker_available():
        with couchdb_container() as up:
            yield up
    else:
        yield None


def couchdb_required() -> bool:
    """Whether a missing CouchDB fails the run (CI) rather than skipping its tests."""
    return bool(os.environ.get("COUCHGATE_REQUIRE_COUCHDB"))
