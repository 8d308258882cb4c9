"""Metrics: counters, histograms and gauges on a per-process registry, fed by real jobs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from bot.engine import JobGate
from bot.models import Usage
from bot.ops import Metrics
from tests.fakes.gptproto import FakeGptProto, Outcome
from tests.ops.raw import get, port_of, started
from tests.support.engine import engine_on, request


def _samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.render().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return _samples(metrics).get((name, frozenset(labels.items())))


def test_each_process_has_its_own_registry() -> None:
    first, second = Metrics(CollectorRegistry()), Metrics(CollectorRegistry())
    first.on_job(platform="slack", outcome="ok", seconds=1.0, usage=Usage(images=1))
    assert _value(first, "bot_jobs_total", platform="slack", outcome="ok") == 1
    assert _value(second, "bot_jobs_total", platform="slack", outcome="ok") is None


def test_jobs_tokens_and_images_are_counted_by_platform_and_outcome() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.on_job(platform="slack", outcome="ok", seconds=3.0, usage=Usage(10, 1290, 1300, 1))
    metrics.on_job(platform="slack", outcome="ok", seconds=4.0, usage=Usage(20, 1290, 1310, 2))
    metrics.on_job(platform="discord", outcome="PromptBlocked", seconds=0.5, usage=Usage())
    assert _value(metrics, "bot_jobs_total", platform="slack", outcome="ok") == 2
    assert _value(metrics, "bot_jobs_total", platform="discord", outcome="PromptBlocked") == 1
    assert _value(metrics, "bot_tokens_total", platform="slack", direction="input") == 30
    assert _value(metrics, "bot_tokens_total", platform="slack", direction="output") == 2580
    assert _value(metrics, "bot_images_total", platform="slack") == 3
    assert _value(metrics, "bot_images_total", platform="discord") is None
    assert _value(metrics, "bot_job_duration_seconds_count", platform="slack") == 2
    assert _value(metrics, "bot_job_duration_seconds_sum", platform="slack") == 7.0
    assert _value(metrics, "bot_job_duration_seconds_bucket", platform="slack", le="5.0") == 2
    assert _value(metrics, "bot_job_duration_seconds_bucket", platform="slack", le="2.5") == 0


def test_upstream_attempts_and_retries() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.on_attempt(seconds=0.2, outcome="http_503")
    metrics.on_retry(reason="http_503", delay=1.5)
    metrics.on_attempt(seconds=8.0, outcome="ok")
    assert _value(metrics, "bot_upstream_retries_total", reason="http_503") == 1
    assert _value(metrics, "bot_upstream_request_duration_seconds_count", outcome="ok") == 1
    assert _value(metrics, "bot_upstream_request_duration_seconds_count", outcome="http_503") == 1


async def test_gauges_read_queue_depth_and_in_flight_from_the_gate() -> None:
    metrics = Metrics(CollectorRegistry())
    gate = JobGate(max_concurrent=1, max_queue=5)
    metrics.watch_gate(gate)
    assert _value(metrics, "bot_queue_depth") == 0
    release, queued = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with gate.slot():
            await release.wait()

    async def on_queued(position: int) -> None:
        if position:
            queued.set()

    async def wait_in_line() -> None:
        async with gate.slot(on_queued):
            pass

    tasks = [asyncio.create_task(hold()), asyncio.create_task(wait_in_line())]
    await asyncio.wait_for(queued.wait(), 5)
    assert _value(metrics, "bot_jobs_in_flight") == 1
    assert _value(metrics, "bot_queue_depth") == 1
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert _value(metrics, "bot_jobs_in_flight") == 0
    assert _value(metrics, "bot_queue_depth") == 0


async def test_a_real_job_with_a_retry_feeds_every_metric(tmp_path: Path) -> None:
    metrics = Metrics(CollectorRegistry())
    async with (
        FakeGptProto() as fake,
        engine_on(fake, tmp_path, observer=metrics, upstream_observer=metrics) as (engine, _),
    ):
        metrics.watch_gate(engine.gate)
        fake.queue(Outcome.overloaded(), Outcome.image())
        reply = await engine.imagine(request("t1"))
    assert _value(metrics, "bot_jobs_total", platform="slack", outcome="ok") == 1
    assert _value(metrics, "bot_upstream_retries_total", reason="http_503") == 1
    assert _value(metrics, "bot_upstream_request_duration_seconds_count", outcome="ok") == 1
    assert _value(metrics, "bot_images_total", platform="slack") == len(reply.images)
    input_tokens = _value(metrics, "bot_tokens_total", platform="slack", direction="input")
    assert input_tokens == reply.usage.input_tokens > 0
    output_tokens = _value(metrics, "bot_tokens_total", platform="slack", direction="output")
    assert output_tokens == reply.usage.output_tokens > 0


async def test_refusals_are_counted_on_the_served_page_by_a_fixed_set_of_reasons() -> None:
    metrics = Metrics(CollectorRegistry())
    for reason in ("access", "quota", "quota", "queue_full", "made-up", "input\n}{"):
        metrics.on_refused(reason=reason)
    async with started(metrics=metrics) as server:
        status, text = await get(port_of(server), "/metrics")
    assert status == 200
    counted = {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "bot_refusals_total"
    }
    assert counted == {
        "access": 1, "rate_limit": 0, "quota": 2, "queue_full": 1, "input": 0,
        "shutting_down": 0, "other": 2,
    }  # fmt: skip
