"""How one raw setting becomes its typed value: the parsing that :class:`gateway.config.Settings`'
annotations drive, and the error that names the setting a value is wrong for.

Kept apart from the settings themselves so ``config.py`` reads as the list of settings and the
layers they come from; this module knows nothing of which settings exist.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

ENV_PREFIX = "COUCHGATE_"


class ConfigError(Exception):
    """A setting is missing or wrong; ``str()`` is the one line an admin sees."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{env_name(setting)}: {problem}")


def env_name(setting: str) -> str:
    return ENV_PREFIX + setting.upper()


@dataclass(frozen=True, slots=True)
class AppLimits:
    """One app's own limits; a field left unset (None) falls back to the global setting."""

    quota_bytes: int | None = None
    quota_docs: int | None = None
    device_requests_per_minute: int | None = None


def parse(name: str, hint: Any, raw: object) -> object:
    """Turn a raw value (a string from the environment, or a TOML value) into the field's type."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if raw is None or raw == "":
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return parse(name, inner, raw)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if raw not in allowed:
            raise ConfigError(name, f"must be one of {', '.join(allowed)}; got {raw!r}")
        return raw
    if origin is tuple:
        if isinstance(raw, str):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            return tuple(raw)
        raise ConfigError(name, "must be a list of strings (comma-separated in the environment)")
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"must be true or false; got {raw!r}")
    if hint is int:
        if isinstance(raw, bool):
            raise ConfigError(name, "must be a whole number")
        try:
            return int(raw)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise ConfigError(name, f"must be a whole number; got {raw!r}") from None
    if hint is float:
        if isinstance(raw, bool):
            raise ConfigError(name, "must be a number")
        try:
            return float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigError(name, f"must be a number; got {raw!r}") from None
    if origin is Mapping:
        return _parse_app_limits(name, raw)
    if hint is str:
        if not isinstance(raw, str):
            raise ConfigError(name, "must be a string")
        return raw
    raise ConfigError(name, f"unsupported setting type {hint!r}")  # pragma: no cover


def _parse_app_limits(name: str, raw: object) -> Mapping[str, AppLimits]:
    """``{app: {limit: number}}`` from a TOML table, or the same as JSON from the environment."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ConfigError(name, "must be a JSON object of apps and their limits") from None
    if not isinstance(raw, dict):
        raise ConfigError(name, "must be a table of apps and their limits")
    allowed = {f.name for f in dataclasses.fields(AppLimits)}
    out: dict[str, AppLimits] = {}
    for app, table in raw.items():
        if not isinstance(table, dict) or not set(table) <= allowed:
            raise ConfigError(
                name, f"limits of {app!r} must be a table of {', '.join(sorted(allowed))}"
            )
        values = {k: parse(name, int, v) for k, v in table.items()}
        out[str(app)] = AppLimits(**values)  # type: ignore[arg-type]
    return MappingProxyType(out)
