"""Overhead: the time the bot adds to one job, through the core and through Slack over HTTP.

A job's overhead is its time from event to delivered reply less the time its request spent
inside the fake upstream (the pause that stands for the model, and making the answer). It is
compared with the floor of the same job, measured in the same run in three blocks while
nothing else runs: before the jobs, between the one-at-a-time and the together ones, after.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.bot_side import (
    SIGNING_SECRET,
    bench_settings,
    job_request,
    running_engine,
    running_slack,
)
from bench.floor import Floor, FloorTimes, answer_image
from bench.report import Row, judged, ms, percentile
from bench.sizes import Context
from bench.world import World
from bot.engine import Engine

NAME = "overhead"
RATIO_TARGET = 2.0
PROMPT = "a lighthouse on a cliff at dusk, oil painting"

Runner = Callable[[list[int]], Awaitable[list[float]]]


def core_runner(engine: Engine, world: World) -> Runner:
    """engine.imagine for every job at once; each one's overhead."""

    async def one(job: int) -> float:
        started = time.monotonic()
        reply = await engine.imagine(job_request(job, f"{PROMPT} [job:{job}]"))
        ended = time.monotonic()
        assert reply.images, "no image"
        served = await world.event("served", str(job))
        return (ended - started) - float(served["t1"] - served["t0"])

    async def run(jobs: list[int]) -> list[float]:
        return list(await asyncio.gather(*(one(job) for job in jobs)))

    return run


def slack_runner(world: World, url: str, idle: Callable[[], Awaitable[None]]) -> Runner:
    """Signed app_mentions POSTed by the fake Slack; the end is files.completeUploadExternal."""

    async def one(job: dict[str, str]) -> float:
        posted = await world.event("sent", job["job"])
        assert posted["status"] == 200, posted
        upload = await world.event("upload", job["ts"])
        assert upload["ok"], upload
        served = await world.event("served", job["job"])
        return float(upload["t"] - posted["t"]) - float(served["t1"] - served["t0"])

    async def run(jobs: list[int]) -> list[float]:
        stamp = int(time.time())
        sent = [
            {
                "job": str(job),
                "text": f"{PROMPT} [job:{job}]",
                "ts": f"{stamp}.{job:06d}",
                "user": f"U{job:06d}",
            }
            for job in jobs
        ]
        await world.mention(url=url, secret=SIGNING_SECRET, jobs=sent)
        overheads = list(await asyncio.gather(*(one(job) for job in sent)))
        await idle()  # the result's buttons and reactions, before the next job starts
        return overheads

    return run


@dataclass
class Samples:
    """Overheads (or floors) one job at a time and of jobs arriving together."""

    one: list[float] = field(default_factory=list)
    many: list[float] = field(default_factory=list)


@dataclass
class Measured:
    floor_parts: list[FloorTimes] = field(default_factory=list)
    floor: Samples = field(default_factory=Samples)
    core: Samples = field(default_factory=Samples)
    slack: Samples = field(default_factory=Samples)


FLOOR_BLOCKS = 3  # before the jobs, between the one-at-a-time and together ones, after


async def one_at_a_time(core: Runner, slack: Runner, measured: Measured, context: Context) -> None:
    """Core and Slack jobs taking turns, one job at a time."""
    for _ in range(context.sizes.sequential_jobs):
        measured.core.one += await core([context.next_job()])
        measured.slack.one += await slack([context.next_job()])


async def together(core: Runner, slack: Runner, measured: Measured, context: Context) -> None:
    """Core and Slack rounds taking turns, each round's jobs arriving together."""
    sizes = context.sizes
    for _ in range(sizes.together_rounds):
        measured.core.many += await core([context.next_job() for _ in range(sizes.together)])
        measured.slack.many += await slack([context.next_job() for _ in range(sizes.together)])


async def floors(floor: Floor, measured: Measured, context: Context) -> None:
    """A block of floor samples, taken while nothing else runs.

    Taken between the bot's jobs instead, the floor would also pay for the bot's own
    trailing work (checkpoints, the result's buttons), which belongs to the overhead.
    """
    sizes = context.sizes
    for _ in range(max(1, sizes.sequential_jobs // FLOOR_BLOCKS)):
        parts, took = await floor.job(answer_image(context.next_job(), sizes.result_bytes))
        measured.floor_parts.append(parts)
        measured.floor.one.append(took)
    for _ in range(max(1, sizes.together_rounds // FLOOR_BLOCKS)):
        encoded = [
            answer_image(context.next_job(), sizes.result_bytes) for _ in range(sizes.together)
        ]
        measured.floor.many += await floor.together(encoded)


def ratio_rows(
    path: str, paid: Samples, floor_one: float, floor_many: float, *, context: Context
) -> list[Row]:
    together = context.sizes.together
    smoke = context.sizes.smoke
    label = f"{NAME} {path}"
    rows = [
        Row(
            label,
            "1 job: p50 / p99",
            f"{ms(percentile(paid.one, 0.5))} / {ms(percentile(paid.one, 0.99))}",
        ),
        Row(
            label,
            f"{together} together: p50 / p99",
            f"{ms(percentile(paid.many, 0.5))} / {ms(percentile(paid.many, 0.99))}",
        ),
    ]
    for what, samples, floor in (
        ("1 job", paid.one, floor_one),
        (f"{together} together", paid.many, floor_many),
    ):
        ratio = percentile(samples, 0.5) / floor
        rows.append(
            Row(
                label,
                f"{what}: p50 / floor p50",
                f"{ratio:.2f}x (floor {ms(floor)})",
                f"<= {RATIO_TARGET:g}x",
                judged(ratio <= RATIO_TARGET, smoke=smoke),
            )
        )
    return rows


async def run(context: Context) -> list[Row]:
    sizes = context.sizes
    async with (
        Floor(context.workdir / "floor.db") as floor,
        World(latency=sizes.latency, padding=sizes.result_bytes) as world,
    ):
        settings = bench_settings(
            gptproto=world.gptproto,
            database=context.workdir / "overhead.db",
            max_concurrent_jobs=max(4, sizes.together),
            slack_bot_token=world.bot_token,
            slack_api_url=world.slack_api,
        )
        async with (
            running_engine(settings, log=context.log) as engine,
            running_slack(engine, settings) as (adapter, url),
        ):
            core = core_runner(engine, world)
            slack = slack_runner(world, url, adapter.idle)
            measured = Measured()
            await floor.job(answer_image(0, sizes.result_bytes))  # warm-ups: pools, caches
            await floors(floor, measured, context)
            await core([context.next_job()])
            await slack([context.next_job()])
            await one_at_a_time(core, slack, measured, context)
            await floors(floor, measured, context)
            await together(core, slack, measured, context)
            await floors(floor, measured, context)
    parts = measured.floor_parts
    decode, store, upload = (
        percentile([getattr(p, name) for p in parts], 0.5) for name in ("decode", "store", "upload")
    )
    floor_many = percentile(measured.floor.many, 0.5)
    return [
        Row("floor", "decode / store / upload (p50)", f"{ms(decode)} / {ms(store)} / {ms(upload)}"),
        Row("floor", f"{sizes.together} together (p50)", ms(floor_many)),
        *ratio_rows(
            "core",
            measured.core,
            percentile([p.core for p in parts], 0.5),
            floor_many,
            context=context,
        ),
        *ratio_rows(
            "slack",
            measured.slack,
            percentile([p.slack for p in parts], 0.5),
            floor_many,
            context=context,
        ),
    ]
