"""Operations: the service runner, the HTTP server (health, metrics), logs, retention, checks."""

from __future__ import annotations

from bot.ops.health import Health, Phase, UpstreamTracker
from bot.ops.logs import REDACTED, RedactSecrets, TruncateRecords, configure_logging, secret_values
from bot.ops.metrics import Metrics
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
from bot.ops.service import Adapter, Service
from bot.ops.web import WebServer

__all__ = [
    "REDACTED",
    "Adapter",
    "Finding",
    "Health",
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
    "make_client",
    "offline_findings",
    "online_findings",
    "plan_run",
    "secret_values",
    "slack_over_http",
]
