"""The engine: turns on a thread (generate, edit, refine, re-roll), admission, access, usage."""

from __future__ import annotations

from bot.engine.access import AccessPolicy
from bot.engine.admission import JobCounter, JobGate, QueueCallback, UserLimits
from bot.engine.budgets import USAGE as BUDGET_USAGE
from bot.engine.budgets import BudgetChange, BudgetDefaults, parse_change
from bot.engine.engine import Engine, EngineOptions, clean_prompt, visible
from bot.engine.jobqueue import InProcessQueue, JobHandler, JobQueue, Spawn
from bot.engine.options import MAX_COUNT, UPSCALE_PROMPT, upscale_size
from bot.engine.places import ELSEWHERE, PRUNED
from bot.engine.turns import GONE, INTERRUPTED, Deliver, JobObserver
from bot.engine.usage import UsageReport, UsageSource, price_table, usage_report

__all__ = [
    "BUDGET_USAGE",
    "ELSEWHERE",
    "GONE",
    "INTERRUPTED",
    "MAX_COUNT",
    "PRUNED",
    "UPSCALE_PROMPT",
    "AccessPolicy",
    "BudgetChange",
    "BudgetDefaults",
    "Deliver",
    "Engine",
    "EngineOptions",
    "InProcessQueue",
    "JobCounter",
    "JobGate",
    "JobHandler",
    "JobObserver",
    "JobQueue",
    "QueueCallback",
    "Spawn",
    "UsageReport",
    "UsageSource",
    "UserLimits",
    "clean_prompt",
    "parse_change",
    "price_table",
    "upscale_size",
    "usage_report",
    "visible",
]
