from pathlib import Path

import pytest

from gateway.config import Settings, load_settings
from gateway.config_values import ConfigError, env_name

KEY = "k" * 32
BASE = {"COUCHGATE_UPSTREAM_URL": "http://127.0.0.1:5984", "COUCHGATE_SECRET_KEYS": KEY}


def test_environment_gives_typed_values() -> None:
    s = load_settings(
        env={
            **BASE,
            "COUCHGATE_PORT": "6001",
            "COUCHGATE_CORS_ORIGINS": "https://a.example, https://b.example",
            "COUCHGATE_REGISTRATION": "open",
        }
    )
    assert s.port == 6001
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert s.registration == "open"
    assert s.secret_keys == (KEY,)


def test_layers_file_then_env_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "couchgate.toml"
    cfg.write_text(
        'port = 7000\nhost = "0.0.0.0"\nsecret_keys = ["' + KEY + '"]\n'
        'upstream_url = "http://db:5984"\n'
    )
    from_file = load_settings(config_file=cfg, env={})
    assert (from_file.port, from_file.host) == (7000, "0.0.0.0")
    env_wins = load_settings(config_file=cfg, env={"COUCHGATE_PORT": "7001"})
    assert env_wins.port == 7001
    flag_wins = load_settings(
        config_file=cfg, env={"COUCHGATE_PORT": "7001"}, overrides={"port": 7002}
    )
    assert flag_wins.port == 7002


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"COUCHGATE_UPSTREAM_URL": "http://x"}, "secret_keys"),
        ({**BASE, "COUCHGATE_SECRET_KEYS": "short"}, "secret_keys"),
        (
            {
                "COUCHGATE_SECRET_KEYS": KEY,
                "COUCHGATE_UPSTREAM_AUTH": "jwt",
                "COUCHGATE_UPSTREAM_JWT_SECRET": "j" * 32,
            },
            "upstream_auth",
        ),
        ({**BASE, "COUCHGATE_UPSTREAM_URL": "ftp://x"}, "upstream_url"),
        ({**BASE, "COUCHGATE_PORT": "eighty"}, "port"),
        ({**BASE, "COUCHGATE_PORT": "70000"}, "port"),
        ({**BASE, "COUCHGATE_UPSTREAM_AUTH": "magic"}, "upstream_auth"),
        ({**BASE, "COUCHGATE_UPSTREAM_AUTH": "jwt"}, "upstream_jwt_secret"),
        (
            {**BASE, "COUCHGATE_UPSTREAM_AUTH": "jwt", "COUCHGATE_UPSTREAM_JWT_SECRET": "short"},
            "upstream_jwt_secret",
        ),
        ({**BASE, "COUCHGATE_UPSTREAM_AUTH": "proxy"}, "upstream_proxy_secret"),
        ({**BASE, "COUCHGATE_EMAIL_DELIVERY": "smtp"}, "smtp_host"),
        ({**BASE, "COUCHGATE_REGISTRATION": "allowlist"}, "allowlist"),
        ({**BASE, "COUCHGATE_CORS_ORIGINS": "*"}, "cors_origins"),
        ({**BASE, "COUCHGATE_UPSTREAM_USER": "admin"}, "upstream_password"),
    ],
)
def test_a_bad_setting_names_itself(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env=env)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(env_name(setting) + ": ")
    assert "\n" not in str(caught.value)


def test_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="COUCHGATE_PROT: unknown setting"):
        load_settings(config_file=cfg, env=BASE)


def test_redacted_hides_every_secret() -> None:
    s = load_settings(
        env={
            **BASE,
            "COUCHGATE_UPSTREAM_USER": "admin",
            "COUCHGATE_UPSTREAM_PASSWORD": "hunter2hunter2",
        }
    )
    shown = repr(s.redacted())
    assert KEY not in shown and "hunter2hunter2" not in shown
    assert "admin" in shown


def test_settings_are_frozen() -> None:
    s = load_settings(env=BASE)
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]
    assert isinstance(s, Settings)


def test_no_upstream_means_the_embedded_store() -> None:
    s = load_settings(env={"COUCHGATE_SECRET_KEYS": KEY, "COUCHGATE_DATA_DIR": "/var/lib/cg"})
    assert not s.upstream_configured and s.data_dir == "/var/lib/cg"


def test_serve_runs_on_uvloop_where_it_is_installed() -> None:
    import uvloop

    from gateway.cli import event_loop

    loop = event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
