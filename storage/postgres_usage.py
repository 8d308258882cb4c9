"""The usage ledger (cost by model and size, possibly billed calls) and budgets in PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from bot.models import Budget, BudgetScope, PendingImages, SizeCost, Usage, UsageTotals
from storage.ledger import UNATTRIBUTED, ordered, scope_rank
from storage.postgres_queries import Db

ADD_TO_LINE = (
    "jobs = u.jobs + excluded.jobs, images = u.images + excluded.images,"
    " input_tokens = u.input_tokens + excluded.input_tokens,"
    " output_tokens = u.output_tokens + excluded.output_tokens,"
    " cost_usd = u.cost_usd + excluded.cost_usd,"
    " possibly_billed = u.possibly_billed + excluded.possibly_billed"
)
"""The ON CONFLICT update adding a new line (`excluded`) to the day's line (`u`)."""

LINE_KEY = "(platform, user_id, day, workspace, model, size)"


@dataclass(frozen=True)
class Spent:
    """What one finished turn adds to the ledger."""

    images: int
    usage: Usage
    cost_usd: float
    possibly_billed: int


async def record_possibly_billed(
    db: Db, *, platform: str, workspace: str, user: str, calls: int, now: datetime
) -> None:
    if calls <= 0:
        return
    await db.execute(
        "INSERT INTO usage_ledger AS u (platform, user_id, day, workspace, model, size, jobs,"
        " images, input_tokens, output_tokens, cost_usd, possibly_billed)"
        " VALUES ($1, $2, $3, $4, $5, $5, 0, 0, 0, 0, 0.0, $6)"
        f" ON CONFLICT {LINE_KEY} DO UPDATE SET {ADD_TO_LINE}",
        platform, user, now.date(), workspace, UNATTRIBUTED, calls,
    )  # fmt: skip


async def usage_totals(
    db: Db, *, platform: str, workspace: str | None, user: str | None, since: date
) -> UsageTotals:
    params: list[object] = [platform, since]
    where = _where(["platform = $1", "day >= $2"], params, user_id=user, workspace=workspace)
    # One line per model and size; the totals are their sums, so the ledger is read once.
    rows = await db.fetch(
        "SELECT model, size, sum(jobs)::bigint AS jobs, sum(images)::bigint AS images,"
        " sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens,"
        " sum(cost_usd) AS cost_usd, sum(possibly_billed)::bigint AS possibly_billed"
        f" FROM usage_ledger WHERE {where} GROUP BY model, size",
        *params,
    )
    return UsageTotals(
        jobs=sum(row["jobs"] for row in rows),
        images=sum(row["images"] for row in rows),
        input_tokens=sum(row["input_tokens"] for row in rows),
        output_tokens=sum(row["output_tokens"] for row in rows),
        cost_usd=float(sum(row["cost_usd"] for row in rows)),
        by_size=ordered(
            SizeCost(row["model"], row["size"], row["images"], float(row["cost_usd"]))
            for row in rows
        ),
        possibly_billed=sum(row["possibly_billed"] for row in rows),
    )


async def pending_images(
    db: Db, *, platform: str, workspace: str | None, user: str | None
) -> list[PendingImages]:
    params: list[object] = [platform]
    filters = {"t.user_id": user, "th.workspace": workspace}
    where = _where(["t.status = 'pending'", "t.platform = $1"], params, **filters)
    # Pending turns are few: the partial index on them is all this reads of the turns.
    rows = await db.fetch(
        "SELECT t.model, t.size, count(*) AS images FROM turns t"
        " JOIN threads th ON th.id = t.thread_id"
        f" WHERE {where} GROUP BY t.model, t.size",
        *params,
    )
    return [PendingImages(row["model"], row["size"], row["images"]) for row in rows]


def _where(conditions: list[str], params: list[object], **filters: str | None) -> str:
    """The conditions, and `column = $n` for each filter given a value (appended to params)."""
    for column, value in filters.items():
        if value is not None:
            params.append(value)
            conditions.append(f"{column} = ${len(params)}")
    return " AND ".join(conditions)


async def set_budget(
    db: Db,
    *,
    platform: str,
    workspace: str,
    scope: BudgetScope,
    subject: str,
    monthly_usd: float | None,
) -> None:
    key = (platform, workspace, BudgetScope(scope).value, subject)
    if monthly_usd is None:
        await db.execute(
            "DELETE FROM budgets WHERE platform = $1 AND workspace = $2 AND scope = $3"
            " AND subject = $4",
            *key,
        )
        return
    await db.execute(
        "INSERT INTO budgets (platform, workspace, scope, subject, monthly_usd)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (platform, workspace, scope, subject)"
        " DO UPDATE SET monthly_usd = excluded.monthly_usd",
        *key, float(monthly_usd),
    )  # fmt: skip


async def budgets(db: Db, *, platform: str, workspace: str) -> list[Budget]:
    # Subjects in byte order, as the other stores compare them, whatever the collation.
    rows = await db.fetch(
        "SELECT scope, subject, monthly_usd FROM budgets WHERE platform = $1 AND workspace = $2"
        f' ORDER BY {scope_rank("scope")}, subject COLLATE "C"',
        platform, workspace,
    )  # fmt: skip
    return [
        Budget(platform, workspace, BudgetScope(row["scope"]), row["subject"], row["monthly_usd"])
        for row in rows
    ]
