"""Engines of several processes on one store: claims, thread order, leases, recovery."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

import pytest

from bot.engine import INTERRUPTED, Engine, EngineOptions
from bot.errors import EmptyPrompt, ShuttingDown
from bot.models import TurnStatus
from storage.base import Store
from storage.memory import MemoryStore
from tests.fakes.generator import Script
from tests.support.engine import fast_engine, request
from tests.support.store import Clock

PLATFORMS = ("slack",)


class Watched:
    """A store that counts some calls and can fail the next start_turn, as a full disk does."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.renewals = 0
        self.refused_leases = 0
        self.fail_next_start: Exception | None = None
        self.changed = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def renew(self, *, owner: str, lease: float) -> int:
        self.renewals += 1
        self.changed.set()
        return await self._inner.renew(owner=owner, lease=lease)

    async def acquire_lease(self, name: str, *, owner: str, lease: float) -> bool:
        taken = await self._inner.acquire_lease(name, owner=owner, lease=lease)
        if not taken:
            self.refused_leases += 1
            self.changed.set()
        return taken

    async def start_turn(self, thread_id: int, **turn: Any) -> Any:
        failure, self.fail_next_start = self.fail_next_start, None
        if failure is not None:
            raise failure
        return await self._inner.start_turn(thread_id, **turn)

    async def until(self, condition: Any, *, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


def _options(name: str, lease: float = 30.0) -> EngineOptions:
    return EngineOptions(instance=name, lease_seconds=lease)


async def _claims(engine: Engine, ids: Sequence[str]) -> bool:
    """Whether a delivery of these ids would be answered now (and answer it by doing nothing)."""
    async with engine.answering(platform="slack", event_ids=ids) as first:
        return first


async def test_an_event_one_process_answers_is_a_repeat_for_another() -> None:
    shared = MemoryStore()
    async with (
        fast_engine(store=shared, options=_options("a")) as (one, _, _),
        fast_engine(store=shared, options=_options("b")) as (two, _, _),
    ):
        async with one.answering(platform="slack", event_ids=["event:Ev1"]) as first:
            assert first is True
            assert await _claims(two, ["event:Ev1"]) is False
        assert await _claims(two, ["event:Ev1"]) is False  # settled once answered
        assert await _claims(two, ["event:Ev2"]) is True


async def test_a_job_that_could_not_be_recorded_is_answered_on_the_next_delivery() -> None:
    store = Watched(MemoryStore())
    async with fast_engine(store=cast(Store, store)) as (engine, _, generator):
        asked = replace(request("t1", "a lighthouse"), claims=("event:Ev1",))
        store.fail_next_start = OSError("database or disk is full")
        async with engine.answering(platform="slack", event_ids=asked.claims) as first:
            assert first
            with pytest.raises(OSError):
                await engine.imagine(asked)  # the adapter apologises; the claim goes back

        async with engine.answering(platform="slack", event_ids=asked.claims) as retry:
            assert retry
            reply = await engine.imagine(asked)
        assert await _claims(engine, asked.claims) is False
    assert reply.turn.status is TurnStatus.DONE and len(generator.calls) == 1


async def test_a_refused_request_is_not_answered_twice() -> None:
    async with fast_engine() as (engine, _, generator):
        asked = replace(request("t1", "   "), claims=("event:Ev1",))
        async with engine.answering(platform="slack", event_ids=asked.claims) as first:
            assert first
            with pytest.raises(EmptyPrompt):
                await engine.imagine(asked)
        assert await _claims(engine, asked.claims) is False
    assert generator.calls == []


async def test_turns_of_one_thread_go_one_at_a_time_across_processes() -> None:
    store = Watched(MemoryStore())
    shared = cast(Store, store)
    async with (
        fast_engine(store=shared, options=_options("a")) as (one, _, first_generator),
        fast_engine(store=shared, options=_options("b")) as (two, _, second_generator),
    ):
        start = await one.imagine(request("t1", "a harbour"))
        release = asyncio.Event()
        first_generator.queue(Script(release=release))
        slow = asyncio.create_task(one.refine(request("t1", "make it night")))
        await first_generator.wait_for_calls(2)
        waiting = asyncio.create_task(two.refine(request("t1", "add a lighthouse")))
        await store.until(lambda: store.refused_leases >= 2)
        assert second_generator.calls == []  # still waiting for the other process's turn
        release.set()
        night = await slow
        lighthouse = await waiting
    assert night.turn.parent_id == start.turn.id
    assert lighthouse.turn.parent_id == night.turn.id  # continued from the other's result


async def test_a_running_job_keeps_its_lease_so_no_other_process_takes_it() -> None:
    store = Watched(MemoryStore())
    shared = cast(Store, store)
    async with (
        fast_engine(store=shared, options=_options("a", lease=0.6)) as (owner, _, generator),
        fast_engine(store=shared, options=_options("b", lease=0.6)) as (other, _, _),
    ):
        release = asyncio.Event()
        generator.queue(Script(release=release))
        job = asyncio.create_task(owner.imagine(request("t1", "a slow one")))
        await generator.wait_for_calls(1)
        await store.until(lambda: store.renewals >= 3)  # past two whole lease periods
        assert await other.recover(platforms=PLATFORMS) == []
        release.set()
        reply = await job
    assert reply.turn.status is TurnStatus.DONE


async def test_an_owner_whose_lease_ran_out_still_delivers_once_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    shared = MemoryStore(clock=clock)
    async with (
        fast_engine(store=shared, options=_options("a")) as (owner, _, generator),
        fast_engine(store=shared, options=_options("b")) as (survivor, _, _),
    ):
        release = asyncio.Event()
        generator.queue(Script(release=release))
        delivered: list[int] = []

        async def deliver(reply: Any) -> None:
            delivered.append(reply.turn.id)

        job = asyncio.create_task(owner.imagine(request("t1", "frozen"), deliver=deliver))
        await generator.wait_for_calls(1)
        clock.advance(seconds=31)  # the owner froze for longer than its lease
        (lost, key), *_ = await survivor.recover(platforms=PLATFORMS)
        assert (lost.error, key) == (INTERRUPTED, request("t1").key)
        release.set()
        with caplog.at_level(logging.WARNING):
            reply = await job
        assert await survivor.recover(platforms=PLATFORMS) == []
    assert delivered == [reply.turn.id] and reply.turn.status is TurnStatus.DONE
    assert "lease ran out" in caplog.text


async def test_work_adopted_before_a_shutdown_is_let_in_and_other_work_is_not() -> None:
    async with fast_engine() as (engine, _, generator):
        started = asyncio.Event()

        async def acked_event() -> TurnStatus:
            await started.wait()
            return (await engine.imagine(request("t1", "acked before the stop"))).turn.status

        adopted = asyncio.create_task(acked_event())
        assert engine.adopt(adopted) is True
        engine.stop_accepting()
        started.set()
        with pytest.raises(ShuttingDown):
            await engine.imagine(request("t2", "after the stop"))
        assert await adopted is TurnStatus.DONE
        assert engine.adopt(asyncio.create_task(asyncio.sleep(0))) is False
    assert len(generator.calls) == 1
