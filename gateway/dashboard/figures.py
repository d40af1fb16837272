"""The live figures on the dashboard's front page.

Counts come from the records and the feed registry. Request and sign-in failure totals come from
the ops metrics when that module is present; the dashboard works without it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from aiohttp import web

from gateway import keys


@dataclass(frozen=True, slots=True)
class Figures:
    users: int
    devices: int
    open_feeds: int
    requests: int | None
    sign_in_failures: int | None


def _metric_total(request: web.Request, name: str) -> int | None:
    """The sum of one counter's samples in the app's metrics registry, if there is one."""
    try:
        metrics_module = importlib.import_module("gateway.ops.metrics")
        metrics = request.config_dict.get(metrics_module.METRICS)
        registry = metrics.registry if metrics is not None else None
    except (ImportError, AttributeError):
        return None
    if registry is None:
        return None
    families = [family for family in registry.collect() if family.name == name]
    if not families:
        return None
    return int(sum(s.value for f in families for s in f.samples if s.name == f"{name}_total"))


def figures(request: web.Request, users: int, devices: int) -> Figures:
    return Figures(
        users=users,
        devices=devices,
        open_feeds=len(request.config_dict[keys.FEEDS]),
        requests=_metric_total(request, "couchgate_requests"),
        sign_in_failures=_metric_total(request, "couchgate_sign_in_failures"),
    )
