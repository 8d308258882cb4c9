"""Overhead: the time the bot adds to one job, through the core and through Slack over HTTP.

A job's overhead is its time from event to delivered reply minus the time its request spent
inside the fake upstream (the pause that stands for the model, and making the answer). It is
compared with the floor of the same job measured in the same run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bench.bot_side import SIGNING_SECRET, bench_settings, job_request, running_engine
from bench.bot_side import running_slack
from bench.floor import Floor, FloorTimes, answer_image
from bench.report import Row, judged, ms, percentile
from bench.sizes import Context
from bench.world import World
from bot.core import Engine

NAME = "overhead"
RATIO_TARGET = 2.0
PROMPT = "a lighthouse on a cliff at dusk, oil painting"

Runner = Callable[[list[int]], Awaitable[list[float]]]


async def core_jobs(engine: Engine, world: World, jobs: list[int]) -> list[float]:
    """engine.imagine for every job at once; each one's overhead."""

    async def one(job: int) -> float:
        started = time.monotonic()
        reply = await engine.imagine(job_request(job, f"{PROMPT} [job:{job}]"))
        ended = time.monotonic()
        assert reply.images, "no image"
        served = await world.event("served", str(job))
        return (ended - started) - (served["t1"] - served["t0"])

    return list(await asyncio.gather(*(one(job) for job in jobs)))


def slack_runner(world: World, url: str, idle: Callable[[], Awaitable[None]]) -> Runner:
    """Signed app_mentions POSTed by the fake Slack; the end is files.completeUploadExternal."""

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

        async def one(job: dict[str, str]) -> float:
            posted = await world.event("sent", job["job"])
            assert posted["status"] == 200, posted
            upload = await world.event("upload", job["ts"])
            assert upload["ok"], upload
            served = await world.event("served", job["job"])
            return (upload["t"] - posted["t"]) - (served["t1"] - served["t0"])

        overheads = list(await asyncio.gather(*(one(job) for job in sent)))
        await idle()  # the result's buttons and reactions, before the next job starts
        return overheads

    return run


async def sequential(run: Runner, context: Context, count: int) -> list[float]:
    samples: list[float] = []
    for _ in range(count):
        samples += await run([context.next_job()])
    return samples


async def together(run: Runner, context: Context) -> list[float]:
    sizes = context.sizes
    samples: list[float] = []
    for _ in range(sizes.together_rounds):
        samples += await run([context.next_job() for _ in range(sizes.together)])
    return samples


async def floors(context: Context) -> tuple[list[FloorTimes], list[float]]:
    """The floor one job at a time (its parts) and for jobs arriving together (each one's end)."""
    sizes = context.sizes
    single: list[FloorTimes] = []
    grouped: list[float] = []
    async with Floor(context.scratch / "floor.db") as floor:
        await floor.job(answer_image(0, sizes.result_bytes))  # warm-up
        for _ in range(sizes.sequential_jobs):
            encoded = answer_image(context.next_job(), sizes.result_bytes)
            single.append((await floor.job(encoded))[0])
        for _ in range(sizes.together_rounds):
            encoded = [
                answer_image(context.next_job(), sizes.result_bytes) for _ in range(sizes.together)
            ]
            grouped += await floor.together(encoded)
    return single, grouped


def rows(
    path: str, one: list[float], many: list[float], floor_one: float, floor_many: float, *,
    smoke: bool, together: int,
) -> list[Row]:  # fmt: skip
    p50, p50_many = percentile(one, 0.5), percentile(many, 0.5)
    ratio_one, ratio_many = p50 / floor_one, p50_many / floor_many
    label = f"{NAME} {path}"
    return [
        Row(label, "1 job: p50 / p99", f"{ms(p50)} / {ms(percentile(one, 0.99))}"),
        Row(label, f"{together} together: p50 / p99",
            f"{ms(p50_many)} / {ms(percentile(many, 0.99))}"),  # fmt: skip
        Row(label, "1 job: p50 / floor", f"{ratio_one:.2f}x ({ms(floor_one)})",
            f"<= {RATIO_TARGET:g}x", judged(ratio_one <= RATIO_TARGET, smoke=smoke)),  # fmt: skip
        Row(label, f"{together} together: p50 / floor", f"{ratio_many:.2f}x ({ms(floor_many)})",
            f"<= {RATIO_TARGET:g}x", judged(ratio_many <= RATIO_TARGET, smoke=smoke)),  # fmt: skip
    ]


async def run(context: Context) -> list[Row]:
    sizes = context.sizes
    async with World(latency=sizes.latency, padding=sizes.result_bytes) as world:
        settings = bench_settings(
            gptproto=world.gptproto,
            database=context.scratch / "overhead.db",
            max_concurrent_jobs=max(4, sizes.together),
            slack_bot_token=world.bot_token,
            slack_api_url=world.slack_api,
        )
        async with running_engine(settings, log=context.log) as engine:
            async with running_slack(engine, settings) as (adapter, url):
                core = lambda jobs: core_jobs(engine, world, jobs)  # noqa: E731
                slack = slack_runner(world, url, adapter.idle)
                await core([context.next_job()])  # warm-up: pools, TLS context, caches
                await slack([context.next_job()])
                core_one = await sequential(core, context, sizes.sequential_jobs)
                slack_one = await sequential(slack, context, sizes.sequential_jobs)
                core_many = await together(core, context)
                slack_many = await together(slack, context)
    single, grouped = await floors(context)
    floor_core = percentile([f.core for f in single], 0.5)
    floor_slack = percentile([f.slack for f in single], 0.5)
    floor_many = percentile(grouped, 0.5)
    parts = [percentile([getattr(f, name) for f in single], 0.5) for name in FloorTimes.__annotations__]
    smoke = sizes.smoke
    return [
        Row("floor", "decode / store / upload (p50)", " / ".join(ms(p) for p in parts)),
        Row("floor", f"{sizes.together} together (p50)", ms(floor_many)),
        *rows("core", core_one, core_many, floor_core, floor_many, smoke=smoke,
              together=sizes.together),
        *rows("slack", slack_one, slack_many, floor_slack, floor_many, smoke=smoke,
              together=sizes.together),
    ]  # fmt: skip
