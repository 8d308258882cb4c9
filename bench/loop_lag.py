"""Event-loop lag, core only: the longest stall while 20 jobs with 6 MB photos are normalised
and sent, the photos handed straight to engine.imagine in the bench's own process (no
platform download, no HTTP server). `real lag` measures the real path, from outside.

A ticker task asks to wake every TICK seconds; how late it wakes is how long every other
event (a Slack ack, a Discord heartbeat, another job's reply) would have waited.
"""

from __future__ import annotations

import asyncio
import time

from bench.bot_side import bench_settings, job_request, running_engine
from bench.photos import photos
from bench.report import Row, judged, ms, percentile
from bench.sizes import Context
from bench.world import World
from bot.models import Attachment

NAME = "loop lag"
TICK = 0.005
TARGET = 0.075
PROMPT = "put this photo in the style of a watercolour painting"


class Ticker:
    """Measures how late the loop runs a task that wants to wake every TICK seconds."""

    def __init__(self) -> None:
        self.stalls: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _tick(self) -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(TICK)
            self.stalls.append(max(0.0, time.monotonic() - asked - TICK))


async def run(context: Context) -> list[Row]:
    sizes = context.sizes
    pictures = await photos(sizes.photo_jobs, side=sizes.photo_side, target_bytes=sizes.photo_bytes)
    async with World(latency=sizes.latency, padding=sizes.result_bytes) as world:
        settings = bench_settings(
            gptproto=world.gptproto,
            database=context.workdir / "lag.db",
            max_concurrent_jobs=max(4, sizes.photo_jobs),
        )
        async with running_engine(settings, log=context.log) as engine:
            await engine.imagine(job_request(context.next_job(), PROMPT))  # warm-up
            requests = [
                job_request(
                    context.next_job(),
                    PROMPT,
                    attachments=(Attachment(data=picture, name=f"IMG_{index:04d}.jpg"),),
                )
                for index, picture in enumerate(pictures)
            ]
            del pictures
            ticker = Ticker()
            ticker.start()
            started = time.monotonic()
            replies = await asyncio.gather(*(engine.imagine(request) for request in requests))
            wall = time.monotonic() - started
            await ticker.stop()
            sent = (await world.stats())["served"]
    assert all(reply.images for reply in replies) and sent >= len(requests)
    megabytes = sum(len(r.attachments[0].data) for r in requests) / len(requests) / 1e6
    label = f"core only: {len(requests)} jobs, {megabytes:.1f} MB photos"
    return rows(ticker.stalls, wall, label, smoke=sizes.smoke)


def rows(stalls: list[float], wall: float, label: str, *, smoke: bool) -> list[Row]:
    worst = max(stalls)
    return [
        Row(NAME, f"{label}: wall time", f"{wall:.2f} s"),
        Row(NAME, "core only: stall p99 (5 ms ticker)", ms(percentile(stalls, 0.99))),
        Row(
            NAME,
            "core only: largest stall",
            ms(worst),
            f"<= {ms(TARGET)}",
            judged(worst <= TARGET, smoke=smoke),
        ),
    ]
