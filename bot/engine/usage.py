"""Usage reports: a user's images and tokens, and for admins the workspace's totals and cost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from bot.models import UsageTotals
from bot.upstream import BUILTIN, ModelTable

WINDOW_DAYS = 30


class UsageSource(Protocol):
    """The part of the store a report reads."""

    async def usage_totals(
        self,
        *,
        platform: str,
        workspace: str | None = None,
        user: str | None = None,
        since: date,
    ) -> UsageTotals: ...


@dataclass(frozen=True)
class UsageWindow:
    """Totals for today (UTC) and for the last 30 days, today included."""

    today: UsageTotals
    last_30_days: UsageTotals


@dataclass(frozen=True)
class UsageReport:
    """What a user may see about usage; `workspace` is filled for admins only."""

    platform: str
    workspace_id: str
    user: str
    mine: UsageWindow
    workspace: UsageWindow | None = None

    def render(self) -> str:
        """Plain text an adapter can post as it is (no platform markup)."""
        lines = [
            "Your usage: today " + _describe(self.mine.today)
            + f"; last {WINDOW_DAYS} days " + _describe(self.mine.last_30_days) + "."
        ]  # fmt: skip
        if self.workspace is not None:
            today, month = self.workspace.today, self.workspace.last_30_days
            lines.append(
                "Everyone here: today " + _describe(today)
                + f"; last {WINDOW_DAYS} days " + _describe(month) + "."
            )  # fmt: skip
            lines.append(
                f"Estimated cost: ${today.cost_usd:.2f} today, ${month.cost_usd:.2f} over "
                f"{WINDOW_DAYS} days (list price per image and size)."
            )
            if month.by_size:
                lines.append(
                    f"By model and size, last {WINDOW_DAYS} days: " + _by_size(month) + "."
                )
            if month.possibly_billed:
                lines.append(
                    f"Possibly billed without a result: {month.possibly_billed} call"
                    f"{'s' if month.possibly_billed != 1 else ''} (the connection dropped after "
                    "the request was sent; each was retried at most once)."
                )
        return "\n".join(lines)


def price_table(models: ModelTable = BUILTIN) -> tuple[tuple[str, str, float], ...]:
    """Each known model and size with the price per image the cost estimate uses, in USD."""
    return tuple(
        (caps.name, size, usd) for caps in models.models.values() for size, usd in caps.prices
    )


def _by_size(totals: UsageTotals) -> str:
    return ", ".join(
        f"{line.model} {line.size}: {line.images} image{'s' if line.images != 1 else ''} "
        f"${line.cost_usd:.2f}"
        for line in totals.by_size
    )


def _describe(totals: UsageTotals) -> str:
    images = f"{totals.images} image{'s' if totals.images != 1 else ''}"
    tokens = totals.input_tokens + totals.output_tokens
    return f"{images}, {tokens:,} tokens ({totals.input_tokens:,} in, {totals.output_tokens:,} out)"


def _utc_today() -> date:
    return datetime.now(UTC).date()


async def _window(
    source: UsageSource, *, platform: str, workspace: str | None, user: str | None, today: date
) -> UsageWindow:
    start = today - timedelta(days=WINDOW_DAYS - 1)
    return UsageWindow(
        today=await source.usage_totals(
            platform=platform, workspace=workspace, user=user, since=today
        ),
        last_30_days=await source.usage_totals(
            platform=platform, workspace=workspace, user=user, since=start
        ),
    )


async def usage_report(
    source: UsageSource,
    *,
    platform: str,
    workspace: str,
    user: str,
    admin: bool = False,
    today: date | None = None,
) -> UsageReport:
    """The caller's usage on this platform; for an admin also the workspace's totals and cost."""
    day = today or _utc_today()
    mine = await _window(source, platform=platform, workspace=None, user=user, today=day)
    everyone = None
    if admin:
        everyone = await _window(
            source, platform=platform, workspace=workspace, user=None, today=day
        )
    return UsageReport(
        platform=platform, workspace_id=workspace, user=user, mine=mine, workspace=everyone
    )
