"""Loop stall on the real path: how late the bot process answers /healthz while 20 mentions,
each bringing its own 6 MB 12-megapixel EXIF-rotated JPEG, are downloaded, normalised, sent
upstream and answered.

The bot runs as `python -m bot run --role web`; the photos are files on the fake Slack that the
bot downloads itself. The bench asks /healthz every 5 ms over one kept-alive connection
(bench.healthz), first while the bot idles, then from the first mention until the bot has put
its final reaction on every one. (`loop lag` is the core-only number: photos handed to
engine.imagine in the bench's own process.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from adapters.slack import EVENTS_PATH
from bench.bot_process import BotProcess, slack_settings
from bench.healthz import HealthPoller
from bench.photos import photos
from bench.report import Row, judged, ms, percentile
from bench.sizes import Context
from bench.slack_jobs import SlackJobs
from bench.world import World

NAME = "real lag"
TARGET = 0.050
PROMPT = "put this photo in the style of a watercolour painting"


async def photo_files(context: Context) -> list[Path]:
    """The photos, written to the scratch directory: the fake Slack hosts them from there."""
    sizes = context.sizes
    made = await photos(sizes.photo_jobs, side=sizes.photo_side, target_bytes=sizes.photo_bytes)
    paths = []
    for index, data in enumerate(made):
        path = context.workdir / f"IMG_{index:04d}.jpg"
        path.write_bytes(data)
        paths.append(path)
    return paths


@dataclass
class Seen:
    idle: list[float]
    busy: list[float]
    unhealthy: int
    wall: float


async def measure(world: World, bot: BotProcess, paths: list[Path], context: Context) -> Seen:
    """The idle baseline, then /healthz from the first photo mention until all are done."""
    async with HealthPoller(f"{bot.url}/healthz") as poller:
        jobs = SlackJobs(world, f"{bot.url}{EVENTS_PATH}", context)
        await jobs.run([jobs.mention(prompt=PROMPT)])  # warm-up: pools, caches
        idle = await poller.sample(context.sizes.health_idle)
        poller.start()
        started = time.monotonic()
        await jobs.run([jobs.mention(attach=str(path), prompt=PROMPT) for path in paths])
        wall = time.monotonic() - started
        busy = await poller.stop()
        return Seen(idle, busy, poller.unhealthy, wall)


async def run(context: Context) -> list[Row]:
    sizes = context.sizes
    paths = await photo_files(context)
    async with World(latency=sizes.latency, padding=sizes.result_bytes) as world:
        settings = slack_settings(
            world, context.workdir / "lag.db", max_concurrent_jobs=max(4, sizes.photo_jobs)
        )
        async with BotProcess(
            settings, role="web", workdir=context.workdir, log=context.log
        ) as bot:
            seen = await measure(world, bot, paths, context)
    megabytes = sum(path.stat().st_size for path in paths) / len(paths) / 1e6
    return rows(seen, f"{len(paths)} mentions, {megabytes:.1f} MB photos", smoke=sizes.smoke)


def rows(seen: Seen, label: str, *, smoke: bool) -> list[Row]:
    idle, busy, worst = seen.idle, seen.busy, max(seen.busy)
    idle_text = f"{ms(percentile(idle, 0.5))} / {ms(max(idle))}"
    busy_text = f"{ms(percentile(busy, 0.5))} / {ms(percentile(busy, 0.99))} ({len(busy)} asked)"
    limit, verdict = f"<= {ms(TARGET)}", judged(worst <= TARGET, smoke=smoke)
    healthy = judged(seen.unhealthy == 0, smoke=smoke)
    return [
        Row(NAME, f"{label}: wall time", f"{seen.wall:.2f} s"),
        Row(NAME, "/healthz while idle: p50 / largest", idle_text),
        Row(NAME, "/healthz while they run: p50 / p99", busy_text),
        Row(NAME, "largest /healthz delay", ms(worst), limit, verdict),
        Row(NAME, "/healthz answers other than 200", str(seen.unhealthy), "= 0", healthy),
    ]
