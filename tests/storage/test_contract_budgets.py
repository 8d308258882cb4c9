"""The Store contract for true cost: sizes on turns, cost by model and size, possibly billed
calls, and monthly budgets per workspace."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.models import Budget, BudgetScope, PendingImages, SizeCost, Usage, UsageTotals
from storage.base import Store
from tests.support.store import (
    OWNER,
    START,
    Clock,
    done_turn,
    image,
    new_thread,
    pending_turn,
)

FLASH = "gemini-3.1-flash-image"
PRO = "gemini-3-pro-image"


def _lines(totals: UsageTotals) -> list[tuple[str, str, int, float]]:
    """by_size with costs rounded: sums of floats differ in their last bits between stores."""
    return [(s.model, s.size, s.images, round(s.cost_usd, 6)) for s in totals.by_size]


# -- sizes on turns --------------------------------------------------------------------


async def test_a_turn_keeps_the_size_it_asked_for(store: Store) -> None:
    thread = await new_thread(store)
    sized = await pending_turn(store, thread.id, model=FLASH, size="4K")
    assert sized.size == "4K"
    assert await store.get_turn(sized.id) == sized

    finished = await store.finish_turn(
        sized.id, owner=OWNER, outputs=(image("big"),), text="", usage=Usage(), parts_json="[]"
    )
    assert finished.size == "4K"
    assert (await store.lineage(finished.id, limit=3))[-1].size == "4K"
    unsized = await done_turn(store, thread.id, parent_id=finished.id)
    assert unsized.size is None
    assert [t.size for t in await store.lineage(unsized.id, limit=3)] == ["4K", None]


# -- cost by model and size ------------------------------------------------------------


async def _spend(store: Store, clock: Clock) -> None:
    """Two days of two models at several sizes, in two workspaces, by two users."""
    t1 = await new_thread(store, "a", workspace="T1")
    t2 = await new_thread(store, "b", workspace="T2")
    await done_turn(store, t1.id, model=FLASH, size="4K", cost_usd=0.151)  # day one
    clock.advance(days=1)
    await done_turn(store, t1.id, model=FLASH, size="4K", cost_usd=0.151)
    await done_turn(store, t1.id, model=FLASH, size="2K", cost_usd=0.101)
    await done_turn(store, t1.id, model=FLASH, cost_usd=0.067)  # no size: the one size, 1K
    await done_turn(store, t1.id, model=FLASH, size="1K", cost_usd=0.067)
    await done_turn(store, t1.id, user="U2", model=PRO, size="4K", cost_usd=0.24)
    two = (image("v1"), image("v2"))
    await done_turn(store, t2.id, model=PRO, size="2K", outputs=two, cost_usd=0.268)


async def test_usage_totals_split_the_cost_by_model_and_size_largest_first(
    store: Store, clock: Clock
) -> None:
    await _spend(store, clock)
    day_two = clock.now.date()

    mine = await store.usage_totals(platform="slack", user="U1", since=START.date())
    assert (mine.jobs, mine.images) == (6, 7)
    assert mine.cost_usd == pytest.approx(0.151 * 2 + 0.101 + 0.067 * 2 + 0.268)
    assert _lines(mine) == [
        (FLASH, "4K", 2, 0.302),
        (PRO, "2K", 2, 0.268),
        (FLASH, "1K", 2, 0.134),
        (FLASH, "2K", 1, 0.101),
    ]
    assert sum(line.cost_usd for line in mine.by_size) == pytest.approx(mine.cost_usd)

    here = await store.usage_totals(platform="slack", workspace="T1", since=day_two)
    assert (here.jobs, here.images) == (5, 5)
    assert _lines(here) == [
        (PRO, "4K", 1, 0.24),
        (FLASH, "4K", 1, 0.151),
        (FLASH, "1K", 2, 0.134),
        (FLASH, "2K", 1, 0.101),
    ]
    both = await store.usage_totals(platform="slack", workspace="T1", user="U1", since=day_two)
    assert (both.jobs, both.images) == (4, 4)
    assert _lines(both) == [
        (FLASH, "4K", 1, 0.151),
        (FLASH, "1K", 2, 0.134),
        (FLASH, "2K", 1, 0.101),
    ]
    other = await store.usage_totals(platform="slack", workspace="T2", since=START.date())
    [line] = other.by_size
    assert (line.model, line.size, line.images) == (PRO, "2K", 2)
    assert isinstance(line, SizeCost) and line.cost_usd == pytest.approx(0.268)


async def test_lines_of_equal_cost_are_ordered_by_images_then_model_and_size(
    store: Store,
) -> None:
    thread = await new_thread(store)
    free = (image("f1"), image("f2"))
    await done_turn(store, thread.id, model=PRO, size="1K", outputs=free)
    await done_turn(store, thread.id, model=FLASH, size="2K")
    await done_turn(store, thread.id, model=FLASH, size="1K")
    await done_turn(store, thread.id, model=FLASH, size="512", outputs=(), cost_usd=0.0)

    totals = await store.usage_totals(platform="slack", user="U1", since=START.date())

    # The last made no image and cost nothing: it is a job, but no line of cost.
    assert totals.jobs == 4
    assert _lines(totals) == [(PRO, "1K", 2, 0.0), (FLASH, "1K", 1, 0.0), (FLASH, "2K", 1, 0.0)]


async def test_the_since_day_bounds_the_split_as_it_bounds_the_totals(
    store: Store, clock: Clock
) -> None:
    await _spend(store, clock)
    later = clock.now.date() + timedelta(days=1)

    assert await store.usage_totals(platform="slack", user="U1", since=later) == UsageTotals()
    day_one = await store.usage_totals(
        platform="slack", workspace="T1", user="U1", since=START.date()
    )
    day_two = await store.usage_totals(
        platform="slack", workspace="T1", user="U1", since=clock.now.date()
    )
    assert _lines(day_one)[0] == (FLASH, "4K", 2, 0.302)
    assert _lines(day_two)[0] == (FLASH, "4K", 1, 0.151)
    assert day_two.cost_usd == pytest.approx(0.151 + 0.101 + 0.067 * 2)
    assert await store.usage_totals(platform="discord", user="U1", since=START.date()) == (
        UsageTotals()
    )


# -- possibly billed calls -------------------------------------------------------------


async def test_possibly_billed_calls_are_counted_from_results_and_from_failures(
    store: Store, clock: Clock
) -> None:
    t1 = await new_thread(store, "a", workspace="T1")
    await done_turn(store, t1.id, model=FLASH, size="2K", cost_usd=0.101, possibly_billed=1)
    await store.record_possibly_billed(platform="slack", workspace="T1", user="U1", calls=2)
    await store.record_possibly_billed(platform="slack", workspace="T1", user="U1", calls=1)
    await store.record_possibly_billed(platform="slack", workspace="T2", user="U2", calls=1)
    await store.record_possibly_billed(platform="discord", workspace="T1", user="U1", calls=5)
    await store.record_possibly_billed(platform="slack", workspace="T1", user="U1", calls=0)

    mine = await store.usage_totals(platform="slack", user="U1", since=START.date())
    assert mine.possibly_billed == 4
    # A failed job's calls are no job, no image and no cost, and name no model or size.
    assert (mine.jobs, mine.images) == (1, 1)
    assert mine.cost_usd == pytest.approx(0.101)
    assert _lines(mine) == [(FLASH, "2K", 1, 0.101)]
    everyone = await store.usage_totals(platform="slack", since=START.date())
    assert everyone.possibly_billed == 5
    there = await store.usage_totals(platform="slack", workspace="T2", since=START.date())
    assert (there.possibly_billed, there.jobs, there.by_size) == (1, 0, ())
    clock.advance(days=1)
    today = await store.usage_totals(platform="slack", user="U1", since=clock.now.date())
    assert today.possibly_billed == 0


# -- budgets ---------------------------------------------------------------------------


def _budget(scope: BudgetScope, subject: str, usd: float, workspace: str = "T1") -> Budget:
    return Budget("slack", workspace, scope, subject, usd)


async def test_images_in_flight_are_the_pending_turns_by_model_and_size(store: Store) -> None:
    t1 = await new_thread(store, "a", workspace="T1")
    t2 = await new_thread(store, "b", workspace="T2")
    other = await new_thread(store, "c", platform="discord", workspace="T1")
    for _ in range(2):
        await pending_turn(store, t1.id, model=PRO, size="4K")
    await pending_turn(store, t1.id, model=FLASH, user="U2")
    await pending_turn(store, t2.id, model=PRO, size="4K")
    await pending_turn(store, other.id, model=PRO, size="4K")
    await done_turn(store, t1.id, model=PRO, size="4K", cost_usd=0.24)  # in the ledger now
    failed = await pending_turn(store, t1.id, model=PRO, size="2K")
    await store.fail_turn(failed.id, error="no")

    def flights(found: list[PendingImages]) -> set[tuple[str, str | None, int]]:
        return {(f.model, f.size, f.images) for f in found}

    workspace = await store.pending_images(platform="slack", workspace="T1")
    assert flights(workspace) == {(PRO, "4K", 2), (FLASH, None, 1)}
    assert flights(await store.pending_images(platform="slack", user="U1")) == {(PRO, "4K", 3)}
    both = await store.pending_images(platform="slack", workspace="T2", user="U1")
    assert flights(both) == {(PRO, "4K", 1)}
    assert await store.pending_images(platform="slack", user="U3") == []
    assert flights(await store.pending_images(platform="discord")) == {(PRO, "4K", 1)}


async def test_budgets_are_set_replaced_and_removed(store: Store) -> None:
    assert await store.budgets(platform="slack", workspace="T1") == []
    changes = [
        (BudgetScope.WORKSPACE, "T1", 50.0),
        (BudgetScope.ROLE, "R2", 5.0),
        (BudgetScope.USER, "U2", 1.5),
        (BudgetScope.ROLE, "R1", 10.0),
        (BudgetScope.USER, "U1", 2.0),
        (BudgetScope.USER, "U1", 3.25),  # replaces the first
    ]
    for scope, subject, usd in changes:
        await store.set_budget(
            platform="slack", workspace="T1", scope=scope, subject=subject, monthly_usd=usd
        )

    assert await store.budgets(platform="slack", workspace="T1") == [
        _budget(BudgetScope.USER, "U1", 3.25),
        _budget(BudgetScope.USER, "U2", 1.5),
        _budget(BudgetScope.ROLE, "R1", 10.0),
        _budget(BudgetScope.ROLE, "R2", 5.0),
        _budget(BudgetScope.WORKSPACE, "T1", 50.0),
    ]

    for scope, subject in ((BudgetScope.ROLE, "R1"), (BudgetScope.WORKSPACE, "T1")):
        await store.set_budget(
            platform="slack", workspace="T1", scope=scope, subject=subject, monthly_usd=None
        )
    await store.set_budget(  # removing one never set is no error
        platform="slack", workspace="T1", scope=BudgetScope.ROLE, subject="R9", monthly_usd=None
    )
    assert await store.budgets(platform="slack", workspace="T1") == [
        _budget(BudgetScope.USER, "U1", 3.25),
        _budget(BudgetScope.USER, "U2", 1.5),
        _budget(BudgetScope.ROLE, "R2", 5.0),
    ]


async def test_budgets_belong_to_one_workspace_of_one_platform(store: Store) -> None:
    places = (("slack", "T1", 1.0), ("slack", "T2", 2.0), ("discord", "T1", 3.0))
    for platform, workspace, usd in places:
        await store.set_budget(
            platform=platform, workspace=workspace, scope=BudgetScope.USER, subject="U1",
            monthly_usd=usd,
        )  # fmt: skip
    await store.set_budget(
        platform="slack", workspace="T2", scope=BudgetScope.USER, subject="U1", monthly_usd=0.0
    )

    assert await store.budgets(platform="slack", workspace="T1") == [
        _budget(BudgetScope.USER, "U1", 1.0)
    ]
    assert await store.budgets(platform="slack", workspace="T2") == [
        _budget(BudgetScope.USER, "U1", 0.0, workspace="T2")
    ]
    assert await store.budgets(platform="discord", workspace="T1") == [
        Budget("discord", "T1", BudgetScope.USER, "U1", 3.0)
    ]
    assert await store.budgets(platform="discord", workspace="T2") == []
    await store.set_budget(
        platform="slack", workspace="T1", scope=BudgetScope.USER, subject="U1", monthly_usd=None
    )
    assert await store.budgets(platform="slack", workspace="T1") == []
    assert len(await store.budgets(platform="discord", workspace="T1")) == 1


async def test_a_budget_survives_a_reopen(store: Store) -> None:
    await store.set_budget(
        platform="slack", workspace="T1", scope=BudgetScope.ROLE, subject="R1", monthly_usd=7.5
    )
    await store.close()
    await store.open()

    assert await store.budgets(platform="slack", workspace="T1") == [
        _budget(BudgetScope.ROLE, "R1", 7.5)
    ]
