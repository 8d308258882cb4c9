"""The in-process job queue: a single process's route, behind the same port as the shared one."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from bot.engine import InProcessQueue, JobQueue


class Spawner:
    """Starts work as tasks, like the adapter's background tasks; refuses once closed."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        self.names: list[str] = []
        self.closed = False

    def __call__(self, work: Coroutine[Any, Any, None], *, name: str) -> bool:
        if self.closed:
            work.close()
            return False
        self.names.append(name)
        self.tasks.append(asyncio.create_task(work, name=name))
        return True


async def test_a_deferred_job_starts_at_once_in_this_process() -> None:
    spawner, seen = Spawner(), []

    async def handler(payload: dict[str, Any]) -> None:
        seen.append((payload, asyncio.current_task()))

    queue: JobQueue = InProcessQueue(spawner)
    queue.handle("slack.event", handler)
    await queue.open()
    await queue.start()
    assert not queue.shared
    body = {"event_id": "E1"}
    assert await queue.defer(kind="slack.event", payload=body, lock="thread:T", dedupe="event:E1")
    await asyncio.gather(*spawner.tasks)
    [(payload, task)] = seen
    assert payload is body  # nothing crosses a process: the payload is not even copied
    assert task is spawner.tasks[0]
    assert spawner.names == ["slack.event event:E1"]
    await queue.stop()
    await queue.close()


async def test_repeats_are_left_to_the_claims_and_a_stopping_spawner_starts_nothing() -> None:
    spawner, runs = Spawner(), []

    async def handler(payload: dict[str, Any]) -> None:
        runs.append(payload)

    queue = InProcessQueue(spawner)
    queue.handle("kind", handler)
    assert await queue.defer(kind="kind", payload={}, dedupe="same")
    assert await queue.defer(kind="kind", payload={}, dedupe="same")
    await asyncio.gather(*spawner.tasks)
    assert len(runs) == 2  # the handler's claims drop the repeat, as on every route
    spawner.closed = True
    await queue.defer(kind="kind", payload={})
    assert len(runs) == 2
