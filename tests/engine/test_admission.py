"""The concurrency gate, its queue positions, per-user rate limits and daily quotas."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from bot.engine import JobGate, UserLimits
from bot.errors import QueueFull, QuotaExceeded, ShuttingDown, UserRateLimited


async def _wait_for(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Yield to the loop until the gate reaches the state the test waits for, with a deadline."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - the gate has no event to wait on
            await asyncio.sleep(0)


async def test_gate_runs_at_most_max_concurrent_and_reports_positions_in_order() -> None:
    gate = JobGate(max_concurrent=1, max_queue=5)
    release = {name: asyncio.Event() for name in "abc"}
    positions: dict[str, list[int]] = {"b": [], "c": []}
    order: list[str] = []

    async def job(name: str) -> None:
        async def report(position: int) -> None:
            positions[name].append(position)

        async with gate.slot(report):
            order.append(name)
            await release[name].wait()

    first = asyncio.create_task(job("a"))
    await _wait_for(lambda: gate.in_flight == 1)
    second = asyncio.create_task(job("b"))
    await _wait_for(lambda: gate.queued == 1)
    third = asyncio.create_task(job("c"))
    await _wait_for(lambda: gate.queued == 2 and positions["c"] == [2])
    assert positions["b"] == [1]
    assert gate.in_flight == 1
    release["a"].set()
    await _wait_for(lambda: positions["c"] == [2, 1] and order == ["a", "b"])
    release["b"].set()
    release["c"].set()
    await asyncio.gather(first, second, third)
    assert order == ["a", "b", "c"]
    assert positions == {"b": [1, 0], "c": [2, 1, 0]}
    assert gate.in_flight == 0 and gate.queued == 0


async def test_full_queue_refuses_with_a_clear_message() -> None:
    gate = JobGate(max_concurrent=1, max_queue=1)
    hold = asyncio.Event()

    async def job() -> None:
        async with gate.slot():
            await hold.wait()

    running = [asyncio.create_task(job())]
    await _wait_for(lambda: gate.in_flight == 1)
    running.append(asyncio.create_task(job()))
    await _wait_for(lambda: gate.queued == 1)
    with pytest.raises(QueueFull) as refused:
        async with gate.slot():
            pass
    assert "queue is full" in refused.value.user_message
    hold.set()
    await asyncio.gather(*running)


async def test_cancelled_waiter_leaves_the_line_and_keeps_the_count_right() -> None:
    gate = JobGate(max_concurrent=1, max_queue=5)
    hold = asyncio.Event()

    async def job() -> None:
        async with gate.slot():
            await hold.wait()

    holder = asyncio.create_task(job())
    await _wait_for(lambda: gate.in_flight == 1)
    waiter = asyncio.create_task(job())
    await _wait_for(lambda: gate.queued == 1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert gate.queued == 0
    hold.set()
    await holder
    assert gate.in_flight == 0
    async with gate.slot():
        assert gate.in_flight == 1


async def test_failing_position_report_does_not_cost_the_job() -> None:
    gate = JobGate(max_concurrent=1, max_queue=5)
    hold = asyncio.Event()

    async def broken(position: int) -> None:
        raise RuntimeError("chat message gone")

    async def holder() -> None:
        async with gate.slot():
            await hold.wait()

    first = asyncio.create_task(holder())
    await _wait_for(lambda: gate.in_flight == 1)
    ran = asyncio.Event()

    async def queued() -> None:
        async with gate.slot(broken):
            ran.set()

    second = asyncio.create_task(queued())
    await _wait_for(lambda: gate.queued == 1)
    hold.set()
    await asyncio.gather(first, second)
    assert ran.is_set()


async def test_closed_gate_refuses_new_jobs() -> None:
    gate = JobGate(max_concurrent=2, max_queue=2)
    gate.close()
    with pytest.raises(ShuttingDown):
        async with gate.slot():
            pass


class _Counter:
    """The store's count, as several processes' jobs make it."""

    def __init__(self, used: int = 0, first: datetime | None = None) -> None:
        self.used = used
        self.first = first
        self.asked: list[datetime] = []

    async def jobs_since(self, *, platform: str, user: str, since: datetime) -> int:
        self.asked.append(since)
        return self.used

    async def first_job_since(
        self, *, platform: str, user: str, since: datetime
    ) -> datetime | None:
        return self.first


async def test_rate_limit_refuses_the_sixth_job_in_a_minute_and_says_when() -> None:
    now = [1000.0]
    limits = UserLimits(per_minute=5, per_day=0, counter=_Counter(), monotonic=lambda: now[0])
    for _ in range(5):
        await limits.admit(platform="discord", user="u1")
    now[0] += 20
    with pytest.raises(UserRateLimited) as refused:
        await limits.admit(platform="discord", user="u1")
    assert refused.value.retry_after == pytest.approx(40)
    assert "40 seconds" in refused.value.user_message
    await limits.admit(platform="discord", user="u2")  # other users are not affected
    now[0] += 40
    await limits.admit(platform="discord", user="u1")


async def test_the_rate_limit_counts_jobs_other_processes_started() -> None:
    now = datetime(2026, 11, 22, 21, 30, tzinfo=UTC)
    counter = _Counter(used=5, first=now - timedelta(seconds=20))
    limits = UserLimits(per_minute=5, per_day=0, counter=counter, clock=lambda: now)
    with pytest.raises(UserRateLimited) as refused:
        await limits.admit(platform="slack", user="u1")  # none of the five were started here
    assert counter.asked == [now - timedelta(minutes=1)]
    assert refused.value.retry_after == pytest.approx(40)
    counter.used = 4
    await limits.admit(platform="slack", user="u1")


async def test_daily_quota_counts_from_utc_midnight_and_says_when_it_resets() -> None:
    counter = _Counter(used=3)
    clock = lambda: datetime(2026, 11, 22, 21, 30, tzinfo=UTC)  # noqa: E731
    limits = UserLimits(per_minute=0, per_day=3, counter=counter, clock=clock)
    with pytest.raises(QuotaExceeded) as refused:
        await limits.admit(platform="slack", user="u1")
    assert counter.asked == [datetime(2026, 11, 22, tzinfo=UTC)]
    assert "3 images for today" in refused.value.user_message
    assert "3 hours" in refused.value.user_message
    counter.used = 2
    await limits.admit(platform="slack", user="u1")


async def test_zero_means_off() -> None:
    counter = _Counter(used=10_000)
    limits = UserLimits(per_minute=0, per_day=0, counter=counter)
    for _ in range(50):
        await limits.admit(platform="cli", user="local")
    assert counter.asked == []
