"""Usage reports after known jobs (on the in-process fakes): the caller's, and the workspace's."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from bot.engine import AccessPolicy, Engine, UsageReport, price_table, usage_report
from bot.models import Reply, Usage, UsageTotals
from bot.upstream import MODELS
from tests.support.engine import fast_engine, request
from tests.support.store import Clock

PRICE = MODELS["gemini-2.5-flash-image"].price_per_image_usd


def _sum(replies: list[Reply]) -> Usage:
    total = Usage()
    for reply in replies:
        total = total + reply.usage
    return total


def _matches(totals: UsageTotals, replies: list[Reply]) -> None:
    used = _sum(replies)
    assert totals.jobs == len(replies)
    assert totals.images == sum(len(reply.images) for reply in replies) == used.images
    assert totals.input_tokens == used.input_tokens
    assert totals.output_tokens == used.output_tokens


class _History:
    """Jobs on three days: 40 days ago (outside the window), 10 days ago, and today."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self.today = clock.now.date()
        self.mine_today: list[Reply] = []
        self.mine_month: list[Reply] = []
        self.workspace_today: list[Reply] = []
        self.workspace_month: list[Reply] = []

    async def job(self, thread: str, *, user: str, workspace: str = "T1", days_ago: int) -> None:
        self.clock.now = datetime.combine(self.today - timedelta(days=days_ago), time(12), UTC)
        reply = await self.engine.imagine(request(thread, user=user, workspace=workspace))
        if days_ago >= 30:
            return
        if user == "UALICE":
            self.mine_month.append(reply)
            if not days_ago:
                self.mine_today.append(reply)
        if workspace == "T1":
            self.workspace_month.append(reply)
            if not days_ago:
                self.workspace_today.append(reply)

    async def make(self) -> None:
        await self.job("old", user="UALICE", days_ago=40)
        await self.job("a", user="UALICE", days_ago=10)
        await self.job("b", user="UALICE", days_ago=0)
        await self.job("c", user="UALICE", days_ago=0)
        await self.job("d", user="UBOB", days_ago=0)
        await self.job("e", user="UBOB", days_ago=29)
        await self.job("f", user="UCAROL", workspace="T2", days_ago=0)


@pytest.fixture
def clock() -> Clock:
    # The engine's report asks for the real UTC day: the store writes on that day, at noon.
    return Clock(datetime.combine(datetime.now(UTC).date(), time(12), UTC))


async def _report(
    clock: Clock, *, admins: frozenset[str] = frozenset(), **kwargs: bool
) -> tuple[UsageReport, _History]:
    async with fast_engine(clock=clock, access=AccessPolicy(admins=admins)) as (engine, _, _gen):
        history = _History(engine, clock)
        await history.make()
        report = await engine.usage_report(
            platform="slack", workspace="T1", user="UALICE", **kwargs
        )
    return report, history


async def test_a_user_sees_their_images_and_tokens_today_and_over_30_days(
    clock: Clock,
) -> None:
    report, history = await _report(clock)
    _matches(report.mine.today, history.mine_today)
    _matches(report.mine.last_30_days, history.mine_month)
    assert report.workspace is None
    text = report.render()
    month = report.mine.last_30_days
    assert f"last 30 days {month.images} images" in text
    assert f"{month.input_tokens + month.output_tokens:,} tokens" in text
    assert "cost" not in text.lower()


async def test_an_admin_from_the_settings_sees_the_workspace_totals_and_cost(
    clock: Clock,
) -> None:
    report, history = await _report(clock, admins=frozenset({"UALICE"}))
    assert report.workspace is not None
    _matches(report.workspace.today, history.workspace_today)
    _matches(report.workspace.last_30_days, history.workspace_month)
    images_month = report.workspace.last_30_days.images
    assert report.workspace.last_30_days.cost_usd == pytest.approx(images_month * PRICE)
    assert f"${images_month * PRICE:.2f} over 30 days" in report.render()


async def test_a_platform_admin_flag_is_enough(clock: Clock) -> None:
    report, history = await _report(clock, platform_admin=True)
    assert report.workspace is not None
    _matches(report.workspace.today, history.workspace_today)


class _Ledger:
    """Records what a report asks the store for."""

    def __init__(self) -> None:
        self.asked: list[dict[str, object]] = []

    async def usage_totals(self, **query: object) -> UsageTotals:
        self.asked.append(query)
        return UsageTotals(jobs=1, images=1, input_tokens=5, output_tokens=7, cost_usd=PRICE)


async def test_the_windows_are_today_and_the_29_days_before_it() -> None:
    ledger = _Ledger()
    today = datetime(2025, 3, 31, tzinfo=UTC).date()
    await usage_report(
        ledger, platform="discord", workspace="G1", user="U1", admin=True, today=today
    )
    assert ledger.asked == [
        {"platform": "discord", "workspace": None, "user": "U1", "since": today},
        {"platform": "discord", "workspace": None, "user": "U1", "since": today.replace(day=2)},
        {"platform": "discord", "workspace": "G1", "user": None, "since": today},
        {"platform": "discord", "workspace": "G1", "user": None, "since": today.replace(day=2)},
    ]


def test_the_price_table_lists_every_model_at_every_size() -> None:
    table = {(model, size): usd for model, size, usd in price_table()}
    assert {model for model, _ in table} == set(MODELS)
    for name, caps in MODELS.items():
        for size in caps.image_sizes or ("1K",):
            assert table[(name, size)] == caps.price(size)
    assert table[("gemini-3.1-flash-image", "4K")] == 0.151
