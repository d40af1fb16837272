"""Real CouchDB-compatible servers for the integration tests.

First that applies: ``COUCHDB_URL`` (any real CouchDB; credentials in the URL or in
``COUCHDB_USER`` / ``COUCHDB_PASSWORD``, JWT secret in ``COUCHDB_JWT_SECRET``), a ``couchdb:3``
container through testcontainers when a Docker engine answers, else pouchdb-server from the npm
registry (``tests/js``) on a free loopback port in a temporary directory. None is mocked.
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
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

JS_DIR = Path(__file__).parent / "js"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "couchgate-test-admin"
JWT_SECRET = "couchgate-test-jwt-secret-0123456789abcdef"


@dataclass(frozen=True)
class Upstream:
    """A running CouchDB-compatible server and how to reach it as its admin."""

    kind: str  # "couchdb" | "pouchdb-server" | "embedded"
    url: str
    user: str | None
    password: str | None
    jwt_secret: str | None = None

    @property
    def is_couchdb(self) -> bool:
        return self.kind == "couchdb"

    def admin_headers(self) -> dict[str, str]:
        if self.user is None or self.password is None:
            return {}
        raw = f"{self.user}:{self.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def request(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        """A blocking admin request, for test set-up and for peeking at what is stored."""
        data = None if body is None else json.dumps(body).encode()
        # JSON asked for by name: without an Accept header CouchDB answers multipart where it can.
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
    return Upstream("couchdb", url, user, password, os.environ.get("COUCHDB_JWT_SECRET"))


@contextlib.contextmanager
def primary_upstream() -> Iterator[Upstream]:
    """The best real upstream this machine offers (see the module docstring)."""
    from_env = couchdb_from_env()
    if from_env is not None:
        yield from_env
    elif _docker_available():
        with couchdb_container() as up:
            yield up
    else:
        with pouchdb_server() as up:
            yield up
