"""Retention: old turns and images are pruned in the background; a pruned thread says so."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.engine import PRUNED
from bot.errors import NothingToRefine
from bot.ops import Retention
from tests.fakes.gptproto import FakeGptProto
from tests.support.engine import engine_on, request
from tests.support.store import Clock


async def test_a_pruned_thread_answers_a_refinement_with_the_core_message(tmp_path: Path) -> None:
    clock = Clock()
    async with FakeGptProto() as fake, engine_on(fake, tmp_path, clock=clock) as (engine, store):
        old = await engine.imagine(request("old"))
        clock.advance(days=20)
        recent = await engine.imagine(request("recent"))
        clock.advance(days=11)  # "old" is now 31 days old, "recent" 11
        retention = Retention(store, days=30, clock=clock)

        assert await retention.prune_once() == 1

        with pytest.raises(NothingToRefine) as refused:
            await engine.refine(request("old", "make it blue"))
        assert refused.value.user_message == PRUNED
        assert await store.load_images([old.turn.outputs[0]]) == []
        assert len(fake.generations) == 2  # the refusal cost no upstream call

        refined = await engine.refine(request("recent", "make it blue"))
        assert refined.turn.parent_id == recent.turn.id
        sent_back = fake.generations[-1].input_images()
        assert recent.images[0].data in sent_back


async def test_nothing_younger_than_the_cutoff_is_removed(tmp_path: Path) -> None:
    clock = Clock()
    async with FakeGptProto() as fake, engine_on(fake, tmp_path, clock=clock) as (engine, store):
        reply = await engine.imagine(request("t"))
        clock.advance(days=29, hours=23)
        assert await Retention(store, days=30, clock=clock).prune_once() == 0
        assert await store.load_images(reply.turn.outputs) == list(reply.images)


class _Store:
    """A store whose prune fails once, then reports what it removed."""

    def __init__(self) -> None:
        self.cutoffs: list[datetime] = []
        self.called = asyncio.Event()

    async def prune(self, *, before: datetime) -> int:
        self.cutoffs.append(before)
        self.called.set()
        if len(self.cutoffs) == 1:
            raise OSError("disk I/O error")
        return 3


async def test_the_background_task_keeps_pruning_every_interval_after_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, clock, pauses = _Store(), Clock(), []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        clock.advance(seconds=seconds)
        await asyncio.sleep(0)

    retention = Retention(store, days=7, interval=3600, clock=clock, sleep=sleep)
    task = asyncio.create_task(retention.run())
    async with asyncio.timeout(5):
        while len(store.cutoffs) < 3:
            store.called.clear()
            await store.called.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pauses[:2] == [3600, 3600]
    assert store.cutoffs[1] - store.cutoffs[0] == timedelta(hours=1)
    assert store.cutoffs[0] == clock.now - timedelta(days=7) - timedelta(seconds=sum(pauses))
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1 and "retention" in failures[0].getMessage()


async def test_zero_days_keeps_everything_forever() -> None:
    store = _Store()
    retention = Retention(store, days=0)
    await asyncio.wait_for(retention.run(), 1)  # returns at once instead of looping
    assert await retention.prune_once() == 0
    assert store.cutoffs == []
