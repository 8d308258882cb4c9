"""The in-memory store's usage ledger read by model and size, possibly billed calls, budgets."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, datetime

from bot.models import Budget, BudgetScope, PendingImages, SizeCost, TurnStatus, UsageTotals
from storage.ledger import SCOPES, UNATTRIBUTED, ordered
from storage.memory_tables import BudgetKey, LedgerKey, Tables, add_totals, count
from storage.times import utc_day


def usage_totals(
    tables: Tables, *, platform: str, workspace: str | None, user: str | None, since: date
) -> UsageTotals:
    # Days compare as ISO text, as the SQL ledger compares them.
    first_day = since.isoformat()
    total = UsageTotals()
    lines: dict[tuple[str, str], UsageTotals] = {}
    for entry, spent in tables.ledger.items():
        if (
            entry.platform == platform
            and entry.day >= first_day
            and user in (None, entry.user)
            and workspace in (None, entry.workspace)
        ):
            total = add_totals(total, spent)
            group = (entry.model, entry.size)
            lines[group] = add_totals(lines.get(group, UsageTotals()), spent)
    by_size = ordered(
        SizeCost(model, size, spent.images, spent.cost_usd)
        for (model, size), spent in lines.items()
    )
    return replace(total, by_size=by_size)


def pending_images(
    tables: Tables, *, platform: str, workspace: str | None, user: str | None
) -> list[PendingImages]:
    found: Counter[tuple[str, str | None]] = Counter()
    for row in tables.turns.values():
        turn = row.turn
        if (
            turn.status is TurnStatus.PENDING
            and row.platform == platform
            and user in (None, turn.user)
            and workspace in (None, tables.threads[turn.thread_id].workspace)
        ):
            found[(turn.model, turn.size)] += 1
    return [PendingImages(model, size, images) for (model, size), images in found.items()]


def record_possibly_billed(
    tables: Tables, *, platform: str, workspace: str, user: str, calls: int, now: datetime
) -> None:
    if calls > 0:
        line = LedgerKey(platform, user, utc_day(now), workspace, UNATTRIBUTED, UNATTRIBUTED)
        count(tables, line, UsageTotals(possibly_billed=calls))


def set_budget(
    tables: Tables,
    *,
    platform: str,
    workspace: str,
    scope: BudgetScope,
    subject: str,
    monthly_usd: float | None,
) -> None:
    key = BudgetKey(platform, workspace, BudgetScope(scope), subject)
    if monthly_usd is None:
        tables.budgets.pop(key, None)
    else:
        tables.budgets[key] = float(monthly_usd)


def budgets(tables: Tables, *, platform: str, workspace: str) -> list[Budget]:
    found = [
        Budget(platform, workspace, key.scope, key.subject, usd)
        for key, usd in tables.budgets.items()
        if key.platform == platform and key.workspace == workspace
    ]
    # Subjects compare as str, code point by code point, as the SQL stores compare their bytes.
    return sorted(found, key=lambda budget: (SCOPES.index(budget.scope), budget.subject))
