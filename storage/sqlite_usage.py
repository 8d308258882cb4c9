"""The usage ledger (cost by model and size, possibly billed calls) and budgets in SQLite."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime
from typing import Any

from bot.models import Budget, BudgetScope, PendingImages, SizeCost, Usage, UsageTotals
from storage.ledger import UNATTRIBUTED, ledger_size, ordered, scope_rank
from storage.times import utc_day

_ADD = (
    " ON CONFLICT DO UPDATE SET jobs = jobs + excluded.jobs, images = images + excluded.images,"
    " input_tokens = input_tokens + excluded.input_tokens,"
    " output_tokens = output_tokens + excluded.output_tokens,"
    " cost_usd = cost_usd + excluded.cost_usd,"
    " possibly_billed = possibly_billed + excluded.possibly_billed"
)


def count_turn(
    db: sqlite3.Connection,
    thread_id: int,
    *,
    user: str,
    model: str,
    size: str | None,
    images: int,
    usage: Usage,
    cost_usd: float,
    possibly_billed: int,
    now: datetime,
) -> None:
    """Add a finished turn to its day's line of the ledger, under its model and size."""
    db.execute(
        "INSERT INTO usage_ledger (platform, user_id, day, workspace, model, size, jobs, images,"
        " input_tokens, output_tokens, cost_usd, possibly_billed)"
        " SELECT platform, ?, ?, workspace, ?, ?, 1, ?, ?, ?, ?, ? FROM threads WHERE id = ?"
        + _ADD,
        (user, utc_day(now), model, ledger_size(size), images, usage.input_tokens,
         usage.output_tokens, cost_usd, possibly_billed, thread_id),
    )  # fmt: skip


def record_possibly_billed(
    db: sqlite3.Connection, *, platform: str, workspace: str, user: str, calls: int, now: datetime
) -> None:
    if calls <= 0:
        return
    db.execute(
        "INSERT INTO usage_ledger (platform, user_id, day, workspace, model, size, jobs, images,"
        " input_tokens, output_tokens, cost_usd, possibly_billed)"
        " VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0, 0, 0.0, ?)" + _ADD,
        (platform, user, utc_day(now), workspace, UNATTRIBUTED, UNATTRIBUTED, calls),
    )


def usage_totals(
    db: sqlite3.Connection,
    *,
    platform: str,
    workspace: str | None,
    user: str | None,
    since: date,
) -> UsageTotals:
    params: list[Any] = [platform, since.isoformat()]
    where = _where(["platform = ?", "day >= ?"], params, user_id=user, workspace=workspace)
    # One line per model and size; the totals are their sums, so the ledger is read once.
    rows = db.execute(
        "SELECT model, size, sum(jobs), sum(images), sum(input_tokens), sum(output_tokens),"
        f" sum(cost_usd), sum(possibly_billed) FROM usage_ledger WHERE {where}"
        " GROUP BY model, size",
        params,
    ).fetchall()
    return UsageTotals(
        jobs=sum(row[2] for row in rows),
        images=sum(row[3] for row in rows),
        input_tokens=sum(row[4] for row in rows),
        output_tokens=sum(row[5] for row in rows),
        cost_usd=float(sum(row[6] for row in rows)),
        by_size=ordered(SizeCost(row[0], row[1], row[3], float(row[6])) for row in rows),
        possibly_billed=sum(row[7] for row in rows),
    )


def pending_images(
    db: sqlite3.Connection, *, platform: str, workspace: str | None, user: str | None
) -> list[PendingImages]:
    params: list[Any] = [platform]
    filters = {"t.user_id": user, "th.workspace": workspace}
    where = _where(["t.status = 'pending'", "t.platform = ?"], params, **filters)
    # Pending turns are few: the partial index on them is all this reads of the turns.
    rows = db.execute(
        "SELECT t.model, t.size, count(*) FROM turns t JOIN threads th ON th.id = t.thread_id"
        f" WHERE {where} GROUP BY t.model, t.size",
        params,
    ).fetchall()
    return [PendingImages(row[0], row[1], row[2]) for row in rows]


def _where(conditions: list[str], params: list[Any], **filters: str | None) -> str:
    """The conditions, and `column = ?` for each filter given a value (appended to params)."""
    for column, value in filters.items():
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(conditions)


def set_budget(
    db: sqlite3.Connection,
    *,
    platform: str,
    workspace: str,
    scope: BudgetScope,
    subject: str,
    monthly_usd: float | None,
) -> None:
    key = (platform, workspace, BudgetScope(scope).value, subject)
    if monthly_usd is None:
        db.execute(
            "DELETE FROM budgets WHERE platform = ? AND workspace = ? AND scope = ?"
            " AND subject = ?",
            key,
        )
        return
    db.execute(
        "INSERT INTO budgets (platform, workspace, scope, subject, monthly_usd)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET monthly_usd = excluded.monthly_usd",
        (*key, float(monthly_usd)),
    )


def budgets(db: sqlite3.Connection, *, platform: str, workspace: str) -> list[Budget]:
    rows = db.execute(
        "SELECT scope, subject, monthly_usd FROM budgets WHERE platform = ? AND workspace = ?"
        f" ORDER BY {scope_rank('scope')}, subject",
        (platform, workspace),
    ).fetchall()
    return [Budget(platform, workspace, BudgetScope(s), subject, usd) for s, subject, usd in rows]
