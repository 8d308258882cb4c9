"""The runner: start order, crash recovery per platform, health, and the draining shutdown."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from bot.engine import INTERRUPTED
from bot.errors import ConfigError
from bot.models import Reply, ThreadKey, TurnStatus
from bot.ops import Health, Metrics, Phase
from tests.fakes.gptproto import FakeGptProto, Outcome
from tests.ops.raw import FakeClock
from tests.support.engine import engine_on, request
from tests.support.service import FakeAdapter, running, serving, until


async def test_start_serves_health_and_metrics_and_logs_each_adapter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    metrics, events = Metrics(CollectorRegistry()), list[str]()
    async with FakeGptProto() as fake, engine_on(fake, tmp_path, observer=metrics) as (e, store):
        adapters = {p: FakeAdapter(p, e, events) for p in ("discord", "slack")}
        async with running(e, store, adapters, metrics=metrics) as run:
            await serving(run)
            assert await run.get("/healthz") == (200, "ok", "text/plain; charset=utf-8")
            await adapters["slack"].handle(request("t1"))
            status, text, content_type = await run.get("/metrics")
            assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
            assert 'bot_jobs_total{outcome="ok",platform="slack"} 1.0' in text
            assert "bot_queue_depth 0.0" in text
    assert events[:2] == ["discord start", "slack start"]
    logged = [record.getMessage() for record in caplog.records]
    assert "discord: discord test adapter in channel C1" in logged
    assert "slack: slack test adapter in channel C1" in logged
    assert any(line.startswith("http: listening on 127.0.0.1:") for line in logged)


async def test_turns_left_pending_by_a_crash_are_told_to_their_own_platform(
    tmp_path: Path,
) -> None:
    events: list[str] = []
    async with FakeGptProto() as fake, engine_on(fake, tmp_path) as (engine, store):
        lost: dict[str, int] = {}
        for platform in ("discord", "slack", "slack", "cli"):
            key = ThreadKey(platform, "W1", "C1", f"{platform}-{len(lost)}")
            thread = await store.create_thread(key)
            turn = await store.start_turn(
                thread.id, parent_id=None, user="U1", prompt="p", ratio=None,
                model="gemini-2.5-flash-image", inputs=(), owner="crashed", lease=0.0,
            )  # fmt: skip
            lost[f"{platform}-{turn.id}"] = turn.id
        adapters = {p: FakeAdapter(p, engine, events) for p in ("discord", "slack")}
        async with running(engine, store, adapters) as run:
            await serving(run)
    for platform, adapter in adapters.items():
        expected = sorted(v for k, v in lost.items() if k.startswith(platform))
        assert sorted(turn.id for turn, _ in adapter.failed) == expected
        assert {key.platform for _, key in adapter.failed} == {platform}
        assert {turn.status for turn, _ in adapter.failed} == {TurnStatus.FAILED}
        assert {turn.error for turn, _ in adapter.failed} == {INTERRUPTED}


async def test_a_stop_lets_the_job_in_flight_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    events: list[str] = []
    routed: list[str] = []

    def mount(app: web.Application) -> None:
        async def slack_events(_: web.Request) -> web.Response:
            routed.append("delivered")
            return web.Response(text="")

        app.router.add_get("/slack/events", slack_events)

    async with FakeGptProto() as fake, engine_on(fake, tmp_path) as (engine, store):
        fake.queue(Outcome.slow(1.0))
        slack = FakeAdapter("slack", engine, events)
        async with running(engine, store, {"slack": slack}, mount=mount) as run:
            await serving(run)
            assert (await run.get("/slack/events"))[0] == 200
            in_flight = slack.handle(request("t1"))
            await fake.wait_for_requests(1)
            run.service.request_stop()
            await until(lambda: run.phase is Phase.STOPPING)
            assert (await run.get("/healthz"))[:2] == (503, "shutting down")
            assert (await run.get("/slack/events"))[0] == 503
            assert (await run.get("/metrics"))[0] == 200
            await slack.handle(request("t2"))
            assert not in_flight.done()
            await run.stopped()
    assert in_flight.done() and not in_flight.cancelled()
    refusal, reply = slack.posted  # the refusal is immediate, the job ends later
    assert isinstance(reply, Reply) and reply.images[0].data == fake.produced[0]
    assert refusal == "The bot is restarting. Please try again in a minute."
    assert events == ["slack start", "slack posted", "slack stop"]
    assert routed == ["delivered"] and len(fake.generations) == 1


async def test_jobs_still_running_after_the_grace_are_cancelled_and_failed(
    tmp_path: Path,
) -> None:
    events: list[str] = []
    async with FakeGptProto() as fake, engine_on(fake, tmp_path) as (engine, store):
        fake.queue(Outcome.slow(60))
        slack = FakeAdapter("slack", engine, events)
        async with running(engine, store, {"slack": slack}, grace=0.2) as run:
            await serving(run)
            job = slack.handle(request("t1"))
            await fake.wait_for_requests(1)
            run.service.request_stop()
            await run.stopped(within=5)
        assert job.cancelled()
        thread = await store.get_thread(request("t1").key)
        assert thread is not None and thread.head_id is None and thread.turn_count == 1
        assert await store.fail_expired(error="unused", platforms=("slack",)) == []
    assert events == ["slack start", "slack stop"]


def _events_route(app: web.Application) -> None:
    async def deliver(_: web.Request) -> web.Response:
        return web.Response(text="handled")

    app.router.add_get("/slack/events", deliver)


async def test_a_stop_while_an_adapter_is_starting_still_closes_it(tmp_path: Path) -> None:
    events: list[str] = []
    async with FakeGptProto() as fake, engine_on(fake, tmp_path) as (engine, store):
        discord = FakeAdapter("discord", engine, events)
        discord.start_gate = asyncio.Event()  # never set: a gateway that does not connect
        async with running(engine, store, {"discord": discord}, mount=_events_route) as run:
            await until(lambda: events == ["discord start"])
            assert (await run.get("/healthz"))[:2] == (503, "starting")
            assert (await run.get("/slack/events"))[:2] == (503, "starting")
            run.service.request_stop()
            await run.stopped(within=5)
    assert events == ["discord start", "discord stop"]


async def test_a_failed_start_stops_what_started_and_raises(tmp_path: Path) -> None:
    events: list[str] = []
    async with FakeGptProto() as fake, engine_on(fake, tmp_path) as (engine, store):
        discord, slack = (
            FakeAdapter("discord", engine, events),
            FakeAdapter("slack", engine, events),
        )
        slack.start_error = ConfigError("SLACK_BOT_TOKEN was refused")
        async with running(engine, store, {"discord": discord, "slack": slack}) as run:
            with pytest.raises(ConfigError):
                await run.stopped()
            assert run.web.port is None
    assert events == ["discord start", "slack start", "slack stop", "discord stop"]


async def test_an_adapter_that_does_not_stop_is_given_up_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []
    async with FakeGptProto() as fake, engine_on(fake, tmp_path) as (engine, store):
        slack = FakeAdapter("slack", engine, events)
        slack.stop_gate = asyncio.Event()
        async with running(engine, store, {"slack": slack}, adapter_stop_timeout=0.1) as run:
            await serving(run)
            run.service.request_stop()
            await run.stopped(within=5)
    assert "slack: did not stop within 0 s" in caplog.text


async def test_health_names_what_is_wrong() -> None:
    async def answers() -> bool:
        return True

    async def refuses() -> bool:
        return False

    async def breaks() -> bool:
        raise OSError("database disk image is malformed")

    async def hangs() -> bool:
        await asyncio.Event().wait()
        return True

    clock = FakeClock()
    health = Health(answers, clock=clock, max_stall=10)
    assert await health.check() == "starting"
    health.phase = Phase.SERVING
    assert await health.check() is None
    clock.now += 11  # the heartbeat task did not run for 11 s: the loop was blocked
    assert await health.check() == "event loop stalled for 11 s"
    for ping, reason in (
        (refuses, "store is not answering"),
        (breaks, "store ping failed"),
        (hangs, "store did not answer within 0.05 s"),
    ):
        probe = Health(ping, ping_timeout=0.05)
        probe.phase = Phase.SERVING
        assert await probe.check() == reason
    health.phase = Phase.STOPPING
    assert await health.check() == "shutting down"
