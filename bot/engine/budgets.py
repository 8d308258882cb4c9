"""Monthly cost budgets per user, per role and per workspace, checked before a job queues.

A user's own budget wins; without one the largest budget among the user's roles applies
(a role grants each member that much), then the default per-user budget. The workspace's
budget limits everyone in it together. Spending is read from the store's ledger, plus the
images pending turns are making, so every process sharing the store sees the same month and
jobs running now count before they finish.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from bot.errors import AccessDenied, BadArgument, BudgetExceeded
from bot.models import Budget, BudgetScope, PendingImages, UsageTotals

USAGE = (
    "budget (show them) | budget user|role ID USD | budget workspace USD | "
    "budget user|role ID off | budget workspace off"
)


@dataclass(frozen=True)
class BudgetDefaults:
    """The budgets that apply where an admin set none (0: none)."""

    user_usd: float = 0.0
    workspace_usd: float = 0.0


@dataclass(frozen=True)
class BudgetChange:
    """An admin's change: set (or, with monthly_usd None, remove) one budget."""

    scope: BudgetScope
    subject: str | None  # None for the workspace
    monthly_usd: float | None


class BudgetStore(Protocol):
    """The part of the store budgets need."""

    async def usage_totals(
        self, *, platform: str, workspace: str | None = None, user: str | None = None, since: date
    ) -> UsageTotals: ...

    async def set_budget(
        self,
        *,
        platform: str,
        workspace: str,
        scope: BudgetScope,
        subject: str,
        monthly_usd: float | None,
    ) -> None: ...

    async def budgets(self, *, platform: str, workspace: str) -> list[Budget]: ...

    async def pending_images(
        self, *, platform: str, workspace: str | None = None, user: str | None = None
    ) -> list[PendingImages]: ...


Pricing = Callable[[str, "str | None"], float]
"""The price of one image of a model at a size (None: its default size), in USD."""


@dataclass(frozen=True)
class _Applying:
    """The budgets that limit one job: the asker's own (or their roles') and the workspace's."""

    platform: str
    workspace: str
    user: str
    mine: float | None
    shared: float | None


def parse_change(words: Sequence[str]) -> BudgetChange | None:
    """`user|role ID USD|off` or `workspace USD|off` after the word budget; None: show them."""
    if not words:
        return None
    scope_word, *rest = words
    try:
        scope = BudgetScope(scope_word.lower())
    except ValueError:
        raise BadArgument(f"Budgets are set like this: {USAGE}") from None
    wanted = 1 if scope is BudgetScope.WORKSPACE else 2
    if len(rest) != wanted:
        raise BadArgument(f"Budgets are set like this: {USAGE}")
    subject = None if scope is BudgetScope.WORKSPACE else rest[0].strip("<@&!>")
    amount = rest[-1].lower().lstrip("$")
    if amount in ("off", "none", "remove"):
        return BudgetChange(scope, subject, None)
    try:
        usd = float(amount)
    except ValueError:
        raise BadArgument(f"'{rest[-1]}' is not an amount in USD. {USAGE}") from None
    if not 0 <= usd < 1_000_000:
        raise BadArgument("A budget is an amount from 0 to 999,999 USD a month.")
    return BudgetChange(scope, subject, usd)


def _month_start(now: datetime) -> date:
    return now.date().replace(day=1)


class Budgets:
    """Checks a job's estimated cost against the budgets that apply, and lets admins set them."""

    def __init__(
        self,
        store: BudgetStore,
        *,
        price: Pricing,
        defaults: BudgetDefaults | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._price = price
        self._defaults = defaults or BudgetDefaults()
        self._clock = clock
        self._one_at_a_time = asyncio.Lock()

    async def check(
        self, *, platform: str, workspace: str, user: str, roles: Sequence[str], cost_usd: float
    ) -> None:
        """Refuse with BudgetExceeded when the cost would pass a budget that applies."""
        applying = await self._applying(platform, workspace, user=user, roles=roles)
        if applying is not None:
            await self._within(applying, cost_usd)

    @contextlib.asynccontextmanager
    async def admitting(
        self, *, platform: str, workspace: str, user: str, roles: Sequence[str], cost_usd: float
    ) -> AsyncIterator[None]:
        """Check, then check no other job of this process until the block ends.

        The job records its turns inside the block, and a pending turn counts as spent: jobs
        arriving together are counted one after another, so together they stay within the
        budget. Where no budget applies nothing waits.
        """
        applying = await self._applying(platform, workspace, user=user, roles=roles)
        if applying is None:
            yield
            return
        async with self._one_at_a_time:
            await self._within(applying, cost_usd)
            yield

    async def _applying(
        self, platform: str, workspace: str, *, user: str, roles: Sequence[str]
    ) -> _Applying | None:
        set_here = await self._store.budgets(platform=platform, workspace=workspace)
        mine = _user_budget(set_here, user=user, roles=roles, default=self._defaults.user_usd)
        shared = _workspace_budget(set_here, default=self._defaults.workspace_usd)
        if mine is None and shared is None:
            return None
        return _Applying(platform, workspace, user, mine=mine, shared=shared)

    async def _within(self, applying: _Applying, cost_usd: float) -> None:
        since = _month_start(self._clock())
        platform = applying.platform
        if applying.mine is not None:
            spent = await self._spent(platform, user=applying.user, since=since)
            _refuse_over(applying.mine, spent, cost_usd, whose="your")
        if applying.shared is not None:
            spent = await self._spent(platform, workspace=applying.workspace, since=since)
            _refuse_over(applying.shared, spent, cost_usd, whose="this workspace's")

    async def _spent(
        self, platform: str, *, since: date, user: str | None = None, workspace: str | None = None
    ) -> float:
        """The month's ledger and the images being made now, in any process."""
        ledger = await self._store.usage_totals(
            platform=platform, workspace=workspace, user=user, since=since
        )
        flights = await self._store.pending_images(
            platform=platform, workspace=workspace, user=user
        )
        return ledger.cost_usd + sum(self._price(f.model, f.size) * f.images for f in flights)

    async def change(
        self, change: BudgetChange, *, platform: str, workspace: str, admin: bool
    ) -> str:
        """Apply an admin's change; the sentence that confirms it."""
        if not admin:
            raise AccessDenied("Only the bot's admins can change budgets.")
        subject = workspace if change.subject is None else change.subject
        await self._store.set_budget(
            platform=platform,
            workspace=workspace,
            scope=change.scope,
            subject=subject,
            monthly_usd=change.monthly_usd,
        )
        who = _describe_subject(change.scope, subject)
        if change.monthly_usd is None:
            return f"Removed the monthly budget of {who}."
        return f"The monthly budget of {who} is now ${change.monthly_usd:.2f}."

    async def report(self, *, platform: str, workspace: str) -> str:
        """The budgets that apply in a workspace and this month's spending, as plain text."""
        set_here = await self._store.budgets(platform=platform, workspace=workspace)
        since = _month_start(self._clock())
        spent = await self._store.usage_totals(platform=platform, workspace=workspace, since=since)
        lines = [f"Spent here this month: ${spent.cost_usd:.2f}."]
        lines += [
            f"{_describe_subject(budget.scope, budget.subject)}: ${budget.monthly_usd:.2f} a month"
            for budget in set_here
        ]
        if self._defaults.user_usd:
            lines.append(f"every other user: ${self._defaults.user_usd:.2f} a month (default)")
        if self._defaults.workspace_usd and not any(
            budget.scope is BudgetScope.WORKSPACE for budget in set_here
        ):
            lines.append(f"the workspace: ${self._defaults.workspace_usd:.2f} a month (default)")
        if len(lines) == 1:
            lines.append(f"No budgets are set. {USAGE}")
        return "\n".join(lines)


def _user_budget(
    budgets: Sequence[Budget], *, user: str, roles: Sequence[str], default: float
) -> float | None:
    own = [b.monthly_usd for b in budgets if b.scope is BudgetScope.USER and b.subject == user]
    if own:
        return own[0]
    granted = [b.monthly_usd for b in budgets if b.scope is BudgetScope.ROLE and b.subject in roles]
    if granted:
        return max(granted)
    return default or None


def _workspace_budget(budgets: Sequence[Budget], *, default: float) -> float | None:
    shared = [b.monthly_usd for b in budgets if b.scope is BudgetScope.WORKSPACE]
    return shared[0] if shared else (default or None)


def _refuse_over(budget: float, spent: float, cost: float, *, whose: str) -> None:
    # A hundredth of a cent of slack: prices are floats and a budget met exactly is allowed.
    if spent + cost > budget + 1e-4:
        raise BudgetExceeded(whose=whose, budget_usd=budget, spent_usd=spent, cost_usd=cost)


def _describe_subject(scope: BudgetScope, subject: str) -> str:
    if scope is BudgetScope.WORKSPACE:
        return "the workspace"
    return f"user {subject}" if scope is BudgetScope.USER else f"each member of role {subject}"
