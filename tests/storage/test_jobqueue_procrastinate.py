"""The shared job queue on a real PostgreSQL server: what the JobQueue port promises, through
procrastinate - jobs run by a worker, duplicates refused, one job of a lock at a time, jobs of
a dead worker run again, jobs a stopping process hands back taken later, a clean stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from storage.jobqueue_procrastinate import ProcrastinateQueue, Timings, create_schema
from tests.support.postgres import throwaway_database

LEASE = 3.0
WITHIN = 15.0


@pytest.fixture
async def dsn() -> AsyncIterator[str]:
    async with throwaway_database() as made:
        yield made


class Recorder:
    """A handler that records each payload it runs, and may hold the jobs until released."""

    def __init__(self, *, hold: bool = False) -> None:
        self.started: list[dict[str, Any]] = []
        self.finished: list[dict[str, Any]] = []
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self, payload: dict[str, Any]) -> None:
        self.started.append(payload)
        await self.release.wait()
        self.finished.append(payload)


def queue_on(
    dsn: str, *, concurrency: int = 2, adopt: Callable[[asyncio.Task[Any]], bool] | None = None
) -> ProcrastinateQueue:
    return ProcrastinateQueue(
        dsn, concurrency=concurrency, lease=LEASE, adopt=adopt or (lambda task: True)
    )


async def until(condition: Callable[[], bool], what: str, within: float = WITHIN) -> None:
    try:
        async with asyncio.timeout(within):
            while not condition():  # noqa: ASYNC110 - the worker records from its own tasks
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"within {within:g} s: {what}") from None


async def job_rows(dsn: str) -> list[tuple[str, str | None, int]]:
    db = await asyncpg.connect(dsn)
    try:
        rows = await db.fetch("SELECT status::text, lock, attempts FROM procrastinate_jobs")
    finally:
        await db.close()
    return [(row[0], row[1], row[2]) for row in rows]


async def test_a_deferred_job_is_run_by_a_worker_with_its_payload(dsn: str) -> None:
    sender, worker, ran = queue_on(dsn), queue_on(dsn), Recorder()
    sender.handle("kind.a", Recorder())
    worker.handle("kind.a", ran)
    await sender.open()
    await worker.open()
    try:
        await worker.start()
        assert await sender.defer(kind="kind.a", payload={"text": "ü", "n": [1, 2]})
        await until(lambda: ran.finished == [{"text": "ü", "n": [1, 2]}], "the job ran")
    finally:
        await worker.close()
        await sender.close()


async def test_a_second_job_with_the_same_dedupe_key_is_refused_while_one_waits(
    dsn: str,
) -> None:
    queue = queue_on(dsn)
    queue.handle("kind.a", Recorder())
    await queue.open()
    try:
        assert await queue.defer(kind="kind.a", payload={}, dedupe="event:E1")
        assert not await queue.defer(kind="kind.a", payload={}, dedupe="event:E1")
        assert await queue.defer(kind="kind.a", payload={}, dedupe="event:E2")
        assert await queue.defer(kind="kind.a", payload={})  # no key: never a duplicate
    finally:
        await queue.close()
    assert len(await job_rows(dsn)) == 3


async def test_jobs_of_one_lock_run_one_at_a_time_in_order(dsn: str) -> None:
    queue, ran = queue_on(dsn, concurrency=3), Recorder(hold=True)
    queue.handle("kind.a", ran)
    await queue.open()
    try:
        for n in range(3):
            await queue.defer(kind="kind.a", payload={"n": n}, lock="thread:X")
        await queue.defer(kind="kind.a", payload={"n": "other"}, lock="thread:Y")
        await queue.start()
        await until(lambda: len(ran.started) == 2, "the first of each lock started")
        assert sorted(map(str, (p["n"] for p in ran.started))) == ["0", "other"]
        ran.release.set()
        await until(lambda: len(ran.finished) == 4, "every job ran")
        assert [p["n"] for p in ran.started if p["n"] != "other"] == [0, 1, 2]
    finally:
        await queue.close()


async def test_a_job_of_a_worker_that_died_runs_again_on_a_live_one(dsn: str) -> None:
    queue, ran = queue_on(dsn), Recorder()
    queue.handle("kind.a", ran)
    await queue.open()
    try:
        await queue.defer(kind="kind.a", payload={"n": 1}, lock="thread:X", dedupe="event:E")
        await _taken_by_a_dead_worker(dsn, heartbeat_age=Timings.for_lease(LEASE).stalled + 1)
        assert await queue.retry_stalled() == 1
        assert await queue.retry_stalled() == 0  # back in the queue once
        await queue.start()
        await until(lambda: ran.finished == [{"n": 1}], "the job ran again")
    finally:
        await queue.close()


async def test_a_job_of_a_worker_still_beating_is_left_alone(dsn: str) -> None:
    queue = queue_on(dsn)
    queue.handle("kind.a", Recorder())
    await queue.open()
    try:
        await queue.defer(kind="kind.a", payload={})
        await _taken_by_a_dead_worker(dsn, heartbeat_age=Timings.for_lease(LEASE).stalled - 2)
        assert await queue.retry_stalled() == 0
    finally:
        await queue.close()
    assert [status for status, _, _ in await job_rows(dsn)] == ["doing"]


async def _taken_by_a_dead_worker(dsn: str, *, heartbeat_age: float) -> None:
    """Every waiting job marked as taken by a worker whose last heartbeat is that old."""
    db = await asyncpg.connect(dsn)
    try:
        worker = await db.fetchval(
            "INSERT INTO procrastinate_workers (last_heartbeat)"
            " VALUES (now() - make_interval(secs => $1)) RETURNING id",
            heartbeat_age,
        )
        await db.execute(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = $1 WHERE status = 'todo'",
            worker,
        )
    finally:
        await db.close()


async def test_a_job_a_stopping_process_declines_is_run_later(dsn: str) -> None:
    taking = False  # the engine refuses to adopt the job: its process is stopping
    queue, ran = queue_on(dsn, adopt=lambda task: taking), Recorder()
    queue.handle("kind.a", ran)
    await queue.open()
    try:
        await queue.start()
        await queue.defer(kind="kind.a", payload={"n": 1})
        await until_rows(dsn, lambda found: _attempts(found) >= 1, "the job was handed back")
        assert ran.started == []
        taking = True
        await until(lambda: ran.finished == [{"n": 1}], "the job ran once it was taken")
    finally:
        await queue.close()


def _attempts(found: list[tuple[str, str | None, int]]) -> int:
    return max((attempts for _, _, attempts in found), default=0)


async def until_rows(
    dsn: str, condition: Callable[[list[tuple[str, str | None, int]]], bool], what: str
) -> None:
    try:
        async with asyncio.timeout(WITHIN):
            while not condition(await job_rows(dsn)):  # noqa: ASYNC110 - rows, no event
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"within {WITHIN:g} s: {what}") from None


async def test_stop_takes_no_new_job_and_lets_the_running_one_finish(dsn: str) -> None:
    queue, ran = queue_on(dsn), Recorder(hold=True)
    queue.handle("kind.a", ran)
    await queue.open()
    try:
        await queue.start()
        await queue.defer(kind="kind.a", payload={"n": 1})
        await until(lambda: len(ran.started) == 1, "the job started")
        stopping = asyncio.create_task(queue.stop())
        await queue.defer(kind="kind.a", payload={"n": 2})  # a delivery during the shutdown
        await asyncio.wait({stopping}, timeout=0.3)
        assert not stopping.done()  # still waiting for its job
        ran.release.set()
        await asyncio.wait_for(stopping, WITHIN)
        assert ran.finished == [{"n": 1}]
    finally:
        await queue.close()
    assert sorted(status for status, _, _ in await job_rows(dsn)) == ["todo"]


async def test_processes_starting_together_create_the_tables_once(dsn: str) -> None:
    await asyncio.gather(*(create_schema(dsn) for _ in range(4)))
    await create_schema(dsn)  # and later ones find them
    assert await job_rows(dsn) == []


def test_a_dead_workers_jobs_wait_until_its_claims_ran_out() -> None:
    timings = Timings.for_lease(30.0)
    assert timings.heartbeat == 10.0
    # Last heartbeat up to one heartbeat before the death; claims renewed up to then, so
    # they run out at most a lease after it: the stall must be judged later than that.
    assert timings.stalled - timings.heartbeat >= 30.0
