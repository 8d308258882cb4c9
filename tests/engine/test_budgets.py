"""Monthly cost budgets: checked before a job queues, per user, role and workspace."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from bot.engine import AccessPolicy, BudgetChange, BudgetDefaults, EngineOptions, parse_change
from bot.engine.budgets import Budgets
from bot.errors import AccessDenied, BadArgument, BudgetExceeded
from bot.models import BudgetScope
from storage.memory import MemoryStore
from tests.fakes.generator import Script
from tests.support.engine import fast_engine, request

FLASH = "gemini-3.1-flash-image"  # 1K $0.067, 4K $0.151
ADMIN = "UADMIN"


def change(*words: str) -> BudgetChange:
    parsed = parse_change(list(words))
    assert parsed is not None
    return parsed


def options(**budgets: float) -> EngineOptions:
    return EngineOptions(model=FLASH, budgets=BudgetDefaults(**budgets))


async def test_a_users_default_budget_refuses_the_job_that_would_pass_it() -> None:
    async with fast_engine(options=options(user_usd=0.15)) as (engine, _, generator):
        await engine.imagine(request("t1", "a fox"))
        await engine.imagine(request("t2", "a fox"))
        with pytest.raises(BudgetExceeded, match=r"your monthly budget of \$0\.15") as refused:
            await engine.imagine(request("t3", "a fox"))
        # Someone else has a month of their own.
        await engine.imagine(request("t4", "a fox", user="UBOB"))
    assert len(generator.calls) == 3
    assert "$0.13 is spent" in refused.value.user_message


async def test_jobs_arriving_together_stay_within_the_budget_between_them() -> None:
    # 0.15 holds two images at $0.067: five jobs at once must not all pass a check that
    # reads the ledger before any of them is finished.
    release = asyncio.Event()
    async with fast_engine(options=options(user_usd=0.15), max_concurrent=5) as (
        engine,
        store,
        generator,
    ):
        generator.queue(*(Script(release=release) for _ in range(5)))
        jobs = [asyncio.create_task(engine.imagine(request(f"t{n}", "a fox"))) for n in range(5)]
        await generator.wait_for_calls(2)
        async with asyncio.timeout(5):
            while sum(job.done() for job in jobs) < 3:  # noqa: ASYNC110 - other tasks end them
                await asyncio.sleep(0.01)
        refused = [job for job in jobs if job.done()]
        assert len(refused) == 3
        assert all(isinstance(job.exception(), BudgetExceeded) for job in refused)
        [image_at] = await store.pending_images(platform="slack", user="UALICE")
        assert image_at.images == 2
        release.set()
        results = await asyncio.gather(*jobs, return_exceptions=True)
    assert sum(not isinstance(result, BaseException) for result in results) == 2
    assert len(generator.calls) == 2


async def test_the_estimate_counts_every_image_at_its_size() -> None:
    async with fast_engine(options=options(user_usd=0.5)) as (engine, _, generator):
        with pytest.raises(BudgetExceeded, match=r"costs about \$0\.60"):
            await engine.imagine(replace(request("t1", "a fox"), size="4K", count=4))
        await engine.imagine(replace(request("t1", "a fox"), size="4K", count=3))
    assert len(generator.calls) == 3


async def test_a_workspace_budget_limits_everyone_together() -> None:
    async with fast_engine(options=options(workspace_usd=0.1)) as (engine, _, generator):
        await engine.imagine(request("t1", "a fox", user="UALICE"))
        with pytest.raises(BudgetExceeded, match="this workspace's"):
            await engine.imagine(request("t2", "a fox", user="UBOB"))
        # Another workspace is not touched.
        await engine.imagine(request("t3", "a fox", user="UBOB", workspace="T2"))
    assert len(generator.calls) == 2


async def test_admins_set_budgets_at_run_time_and_roles_grant_each_member_one() -> None:
    access = AccessPolicy(admins=frozenset({ADMIN}))
    async with fast_engine(access=access, options=options(user_usd=0.05)) as (engine, store, _):
        with pytest.raises(BudgetExceeded):
            await engine.imagine(request("t1", "a fox", roles=("RART",)))
        said = await engine.change_budget(
            change("role", "RART", "1"), platform="slack", workspace="T1", user=ADMIN
        )
        await engine.imagine(request("t1", "a fox", roles=("RART",)))
        await engine.change_budget(
            change("user", "UALICE", "0.07"), platform="slack", workspace="T1", user=ADMIN
        )
        with pytest.raises(BudgetExceeded, match=r"\$0\.07"):
            await engine.imagine(request("t2", "a fox", roles=("RART",)))
        report = await engine.budget_report(platform="slack", workspace="T1")
        budgets = await store.budgets(platform="slack", workspace="T1")
    assert said == "The monthly budget of each member of role RART is now $1.00."
    assert {(b.scope, b.subject, b.monthly_usd) for b in budgets} == {
        (BudgetScope.ROLE, "RART", 1.0),
        (BudgetScope.USER, "UALICE", 0.07),
    }
    assert "user UALICE: $0.07 a month" in report and "Spent here this month: $0.07" in report


async def test_only_admins_change_budgets() -> None:
    async with fast_engine(options=options()) as (engine, store, _):
        with pytest.raises(AccessDenied):
            await engine.change_budget(
                change("workspace", "5"), platform="slack", workspace="T1", user="UALICE"
            )
        await engine.change_budget(
            change("workspace", "5"),
            platform="slack",
            workspace="T1",
            user="UALICE",
            platform_admin=True,
        )
        await engine.change_budget(
            change("workspace", "off"),
            platform="slack",
            workspace="T1",
            user="UALICE",
            platform_admin=True,
        )
        assert await store.budgets(platform="slack", workspace="T1") == []


@pytest.mark.parametrize(
    "words",
    [["team", "5"], ["user", "5"], ["workspace", "lots"], ["user", "U1", "-3"], ["workspace"]],
)
def test_a_budget_command_that_cannot_work_says_how_it_is_written(words: list[str]) -> None:
    with pytest.raises(BadArgument, match=r"budget|USD"):
        parse_change(words)


async def test_spending_resets_with_the_month() -> None:
    now = [datetime(2026, 11, 30, 23, 0, tzinfo=UTC)]
    store = MemoryStore(clock=lambda: now[0])
    await store.open()
    budgets = Budgets(
        store,
        price=lambda _model, _size: 0.067,
        defaults=BudgetDefaults(user_usd=0.07),
        clock=lambda: now[0],
    )
    async with fast_engine(store=store, options=options()) as (engine, _, _generator):
        await engine.imagine(request("t1", "a fox"))
        with pytest.raises(BudgetExceeded):
            await budgets.check(
                platform="slack", workspace="T1", user="UALICE", roles=(), cost_usd=0.067
            )
        now[0] = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
        await budgets.check(
            platform="slack", workspace="T1", user="UALICE", roles=(), cost_usd=0.067
        )
        totals = await store.usage_totals(platform="slack", user="UALICE", since=date(2026, 11, 1))
    assert [(line.model, line.size, line.images) for line in totals.by_size] == [(FLASH, "1K", 1)]
