"""The Discord path, from outside: the bot as `python -m bot run --role worker`, the real
discord.py client pointed at the fake gateway and REST (DISCORD_GATEWAY_URL,
DISCORD_API_BASE_URL) in bench.world_process.

Each job is a member's MESSAGE_CREATE in #general mentioning the bot with a small PNG of its
own attached (on the fake CDN, which the bot downloads); it ends when the bot's reply carrying
the image has reached the fake REST (POST /channels/{id}/messages, multipart). A round ends
when the bot has posted its hint in the thread it opens from each result.
"""

from __future__ import annotations

import asyncio

from bench.bot_process import BotProcess, discord_settings
from bench.floor import Floor
from bench.outside import Goals, cpu_row, floor_rows, measure, overhead_rows, rss_row
from bench.report import Row
from bench.sizes import Context
from bench.slack_jobs import PROMPT, WITHIN, overhead
from bench.world import World

NAME = "discord"
GOALS = Goals(ratio_one=1.5, ratio_many=2.0)  # the floor goals of the Slack path


class DiscordJobs:
    """Mentions through the fake gateway, each by a member of its own."""

    def __init__(self, world: World, context: Context) -> None:
        self._world = world
        self._context = context

    async def run(self, count: int) -> list[float]:
        """`count` mentions at once; each one's overhead, once the bot is done with all."""
        numbers = [self._context.next_job() for _ in range(count)]
        jobs = [
            {"job": str(n), "text": f"{PROMPT} [job:{n}]", "user": f"member{n}"} for n in numbers
        ]
        await self._world.discord_mention(jobs)
        return list(await asyncio.gather(*(self._one(job["job"]) for job in jobs)))

    async def _one(self, job: str) -> float:
        world = self._world
        sent = await world.event("sent", job, within=WITHIN)
        reply = await world.event("reply", job, within=WITHIN)
        assert reply["ok"], f"job {job} was answered without an image: {reply['text']!r}"
        await world.event("settled", job, within=WITHIN)
        served = await world.event("served", job, within=WITHIN)
        return overhead(sent, reply, served)


async def run(context: Context) -> list[Row]:
    sizes = context.sizes
    async with (
        Floor(context.workdir / "floor.db") as floor,
        World(latency=sizes.latency, padding=sizes.result_bytes, discord=True) as world,
    ):
        settings = discord_settings(
            world, context.workdir / "discord.db", max_concurrent_jobs=max(4, sizes.together)
        )
        async with BotProcess(
            settings, role="worker", workdir=context.workdir, log=context.log
        ) as bot:
            jobs = DiscordJobs(world, context)
            measured, cpu = await measure(floor, jobs.run, bot.cpu_seconds, context)
            memory = bot.procs.peak()
    return [
        *floor_rows(NAME, measured, context),
        *overhead_rows(NAME, measured.slack, measured, goals=GOALS, context=context),
        cpu_row(NAME, cpu, target=None, context=context),
        rss_row(NAME, memory, target_mb=None, context=context),
    ]
