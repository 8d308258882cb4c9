"""The engine: turns on a thread (generate, edit, refine, re-roll), admission, access, usage."""

from __future__ import annotations

from bot.engine.access import AccessPolicy
from bot.engine.admission import JobCounter, JobGate, QueueCallback, UserLimits
from bot.engine.engine import Engine, EngineOptions, clean_prompt, visible
from bot.engine.places import ELSEWHERE, PRUNED
from bot.engine.turns import GONE, INTERRUPTED, Deliver, JobObserver
from bot.engine.usage import UsageReport, UsageSource, price_table, usage_report

__all__ = [
    "ELSEWHERE",
    "GONE",
    "INTERRUPTED",
    "PRUNED",
    "AccessPolicy",
    "Deliver",
    "Engine",
    "EngineOptions",
    "JobCounter",
    "JobGate",
    "JobObserver",
    "QueueCallback",
    "UsageReport",
    "UsageSource",
    "UserLimits",
    "clean_prompt",
    "price_table",
    "usage_report",
    "visible",
]
