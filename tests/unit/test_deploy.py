"""The deployment files, checked without a Docker engine: the compose file parses and wires
what docs/deploy.md promises, no secret is written inline, .env.example lists every variable
the compose file reads, the image runs as a non-root user with a health check, and the
configuration reference is the one the code generates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway import config_doc

ROOT = Path(__file__).resolve().parents[2]
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|KEYS?$|PEPPER")
REFERENCE = re.compile(r"^\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def test_both_services_have_health_checks_and_couchgate_waits_for_couchdb(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert {"couchdb", "couchgate"} <= set(services)
    for name in ("couchdb", "couchgate"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
        assert "profiles" not in services[name]  # `docker compose up` starts both
    assert services["couchdb"]["image"].startswith("couchdb:3.5")
    assert services["couchgate"]["build"] == "."
    assert services["couchgate"]["depends_on"] == {"couchdb": {"condition": "service_healthy"}}
    assert services["couchgate"]["environment"]["COUCHGATE_UPSTREAM_AUTH"] == "jwt"
    assert "couchdb-data:/opt/couchdb/data" in services["couchdb"]["volumes"]


def test_the_dev_profile_adds_a_mail_catcher_couchgate_mails_by_default(
    compose: dict[str, Any],
) -> None:
    mailpit = compose["services"]["mailpit"]
    assert mailpit["profiles"] == ["dev"] and mailpit["image"].startswith("axllent/mailpit")
    env = compose["services"]["couchgate"]["environment"]
    assert env["COUCHGATE_SMTP_HOST"] == "${COUCHGATE_SMTP_HOST:-mailpit}"
    assert env["COUCHGATE_SMTP_PORT"] == "${COUCHGATE_SMTP_PORT:-1025}"


def _environment(compose: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (service, key, str(value))
        for service, spec in compose["services"].items()
        for key, value in (spec.get("environment") or {}).items()
    ]


def _strings(node: object) -> str:
    """Every string of the parsed file (its comments left out), one per line."""
    if isinstance(node, dict):
        return "\n".join(_strings(k) + "\n" + _strings(v) for k, v in node.items())
    if isinstance(node, list):
        return "\n".join(_strings(v) for v in node)
    return str(node)


def test_no_secret_is_written_inline(compose: dict[str, Any]) -> None:
    for service, key, value in _environment(compose):
        if SECRETISH.search(key):
            match = REFERENCE.match(value)
            assert match, f"{service}.{key} = {value!r} is not a ${{VAR}} reference"
            assert ":-" not in value or value.endswith(":-}"), f"{service}.{key} has a default"


def test_env_example_lists_every_variable_the_compose_file_reads(compose: dict[str, Any]) -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", _strings(compose)))
    listed = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used == listed
    example = (ROOT / ".env.example").read_text()
    assert not re.search(r"(PASSWORD|SECRET|KEYS|TOKEN|PEPPER)=\S", example)  # no sample secret


def test_the_jwt_key_is_written_from_the_environment(compose: dict[str, Any]) -> None:
    couchdb = compose["services"]["couchdb"]
    assert couchdb["entrypoint"] == ["tini", "--", "sh", "/opt/couchgate/jwt-entrypoint.sh"]
    script = (ROOT / "deploy/couchdb/jwt-entrypoint.sh").read_text()
    assert "hmac:_default" in script and "/docker-entrypoint.sh" in script
    assert 'exec "$next"' in script
    ini = (ROOT / "deploy/couchdb/local.ini").read_text()
    assert "jwt_authentication_handler" in ini
    sizes = dict(re.findall(r"^(max_\w+) = (\d+)$", ini, re.M))
    assert int(sizes["max_http_request_size"]) >= 64 * 1024 * 1024
    assert int(sizes["max_document_size"]) >= 64 * 1024 * 1024


def test_the_image_runs_unprivileged_with_a_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "\nFROM python:3.11-slim\n" in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", dockerfile, re.M)
    assert "pip install ." in dockerfile


def test_the_configuration_reference_is_current() -> None:
    committed = (ROOT / "docs/configuration.md").read_text()
    assert committed == config_doc.render(), (
        "docs/configuration.md is stale: python -m gateway.config_doc > docs/configuration.md"
    )
