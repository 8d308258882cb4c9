"""/healthz on a real server: a store that takes no writes, a stalled loop, a failing upstream."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from bot.errors import Unavailable
from bot.ops import Health, Metrics, UpstreamTracker
from tests.fakes.gptproto import FakeGptProto, Outcome
from tests.ops.raw import FakeClock, answers, get, port_of, started
from tests.support.engine import engine_on, request

# The fake clock moves only when a test moves it, so the real heartbeat never looks stalled.
NEVER = 1e9


class _Disk:
    """A write probe whose answer the test sets, counting how often it is asked."""

    def __init__(self) -> None:
        self.full: BaseException | bool = False
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def writable(self) -> bool:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(self.full, BaseException):
            raise self.full
        return not self.full


async def test_a_store_that_cannot_be_written_fails_health_and_is_probed_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, disk = FakeClock(), _Disk()
    health = Health(
        answers, writable=disk.writable, write_interval=30, clock=clock, max_stall=NEVER
    )
    async with started(health) as server:
        port = port_of(server)
        assert [await get(port, "/healthz") for _ in range(3)] == [(200, "ok")] * 3
        assert disk.calls == 1  # kept for the interval: /healthz stays cheap
        disk.full = OSError(28, "database or disk is full: /srv/secret-name/bot.db")
        clock.now += 29
        assert await get(port, "/healthz") == (200, "ok")
        clock.now += 1
        assert await get(port, "/healthz") == (503, "store cannot be written (OSError)")
        assert await get(port, "/healthz") == (503, "store cannot be written (OSError)")
        assert disk.calls == 2
        disk.full = True
        clock.now += 30
        assert await get(port, "/healthz") == (503, "store cannot be written")
        disk.full = False
        clock.now += 30
        assert await get(port, "/healthz") == (200, "ok")
    assert disk.calls == 4
    assert "secret-name" in caplog.text  # the detail goes to the log, not to the prober


async def test_concurrent_probes_share_one_write_and_a_hung_write_times_out() -> None:
    disk = _Disk()
    disk.gate = asyncio.Event()
    health = Health(answers, writable=disk.writable, ping_timeout=0.3, max_stall=NEVER)
    async with started(health) as server:
        port = port_of(server)
        answers_ = await asyncio.gather(*(get(port, "/healthz") for _ in range(5)))
    assert answers_ == [(503, "store did not take a write within 0.3 s")] * 5
    assert disk.calls == 1


async def test_a_stalled_loop_fails_health() -> None:
    clock = FakeClock()
    health = Health(answers, clock=clock, max_stall=10)
    async with started(health) as server:
        port = port_of(server)
        assert await get(port, "/healthz") == (200, "ok")
        clock.now += 11  # as if no heartbeat ran for 11 s
        assert await get(port, "/healthz") == (503, "event loop stalled for 11 s")


async def test_an_upstream_failing_every_call_fails_health_until_one_succeeds() -> None:
    clock = FakeClock()
    tracker = UpstreamTracker(window=60, min_failures=3, clock=clock)
    metrics = Metrics(CollectorRegistry())
    metrics.watch_upstream(tracker)
    health = Health(answers, upstream=tracker, clock=clock, max_stall=NEVER)
    down = "the image service failed the last 3 calls and none succeeded in 60 s"
    async with started(health, metrics=metrics) as server:
        port = port_of(server)
        metrics.on_attempt(seconds=0.1, outcome="ok")
        for outcome in ("timeout", "http_503", "connection"):
            clock.now += 10
            metrics.on_attempt(seconds=0.1, outcome=outcome)
        assert await get(port, "/healthz") == (200, "ok")  # it succeeded 30 s ago
        clock.now += 31  # now that success is out of the window
        health.on_upstream(False)
        assert await get(port, "/healthz") == (503, "the image service failed the last 4 calls "
                                                    "and none succeeded in 60 s")  # fmt: skip
        metrics.on_attempt(seconds=0.1, outcome="prompt_blocked")  # an answer: the service is up
        assert await get(port, "/healthz") == (200, "ok")
        clock.now += 61
        for _ in range(3):
            health.on_upstream(False)
        assert await get(port, "/healthz") == (503, down)
        clock.now += 61  # failures that old no longer count
        assert await get(port, "/healthz") == (200, "ok")


async def test_failures_spread_wider_than_the_window_are_not_an_outage() -> None:
    clock = FakeClock()
    health = Health(answers, upstream=UpstreamTracker(window=60, min_failures=3, clock=clock))
    for _ in range(5):
        health.on_upstream(False)
        clock.now += 40
    assert health.upstream.problem() is None


async def test_real_upstream_calls_feed_the_tracker_through_the_metrics(tmp_path: Path) -> None:
    metrics = Metrics(CollectorRegistry())
    health = Health(answers, upstream=UpstreamTracker(min_failures=4), max_stall=NEVER)
    metrics.watch_upstream(health.upstream)
    async with (
        FakeGptProto() as fake,
        engine_on(fake, tmp_path, upstream_observer=metrics) as (engine, _),
        started(health, metrics=metrics) as server,
    ):
        fake.queue(*[Outcome.overloaded()] * 4)
        with pytest.raises(Unavailable):
            await engine.imagine(request("t1"))
        status, text = await get(port_of(server), "/healthz")
        assert (status, text.split(" and ")[0]) == (
            503,
            "the image service failed the last 4 calls",
        )
        await engine.imagine(request("t2"))
        assert await get(port_of(server), "/healthz") == (200, "ok")
