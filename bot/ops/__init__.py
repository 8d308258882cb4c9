"""Operations: the service runner, the HTTP server (health, metrics, signed file links), logs,
retention, checks.

The server side (Service, WebServer, Metrics) loads aiohttp's server and prometheus_client; it
is imported on first use, so `python -m bot imagine` and `check` start without it.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from bot.ops.health import Health, Phase, UpstreamTracker
from bot.ops.links import Links, link_key, links_from
from bot.ops.logs import REDACTED, RedactSecrets, TruncateRecords, configure_logging, secret_values
from bot.ops.preflight import (
    Finding,
    Role,
    RunPlan,
    failed,
    offline_findings,
    plan_run,
    slack_over_http,
)
from bot.ops.probes import make_client, online_findings
from bot.ops.retention import Retention

if _typing.TYPE_CHECKING:
    from bot.ops.files import FileRoute
    from bot.ops.metrics import Metrics
    from bot.ops.service import Adapter, Service
    from bot.ops.web import WebServer

_ON_FIRST_USE = {
    "Adapter": "bot.ops.service",
    "FileRoute": "bot.ops.files",
    "Metrics": "bot.ops.metrics",
    "Service": "bot.ops.service",
    "WebServer": "bot.ops.web",
}

__all__ = [
    "REDACTED",
    "Adapter",
    "FileRoute",
    "Finding",
    "Health",
    "Links",
    "Metrics",
    "Phase",
    "RedactSecrets",
    "Retention",
    "Role",
    "RunPlan",
    "Service",
    "TruncateRecords",
    "UpstreamTracker",
    "WebServer",
    "configure_logging",
    "failed",
    "link_key",
    "links_from",
    "make_client",
    "offline_findings",
    "online_findings",
    "plan_run",
    "secret_values",
    "slack_over_http",
]


def __getattr__(name: str) -> _typing.Any:
    """Load a server-side name the first time it is asked for (PEP 562)."""
    if name not in _ON_FIRST_USE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(_ON_FIRST_USE[name]), name)
    globals()[name] = value
    return value
