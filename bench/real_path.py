"""The real path: the bot started as `python -m bot run --role web`, measured from outside.

Signed `app_mention` events, each with a small PNG attached that the bot downloads from the
fake Slack (`url_private`, bot token), go to its /slack/events; a job ends when its
files.completeUploadExternal reaches the fake. Overhead, the bot process's CPU per job and its
peak RSS are held against the floor and against goals set from a peer open-source Slack image
bot on the same job (0.8x its overhead and CPU, 1.0x its peak RSS).
"""

from __future__ import annotations

from adapters.slack import EVENTS_PATH
from bench.bot_process import BotProcess, slack_settings
from bench.floor import Floor
from bench.outside import Goals, cpu_row, floor_rows, measure, overhead_rows, rss_row
from bench.postgres import scratch_database
from bench.report import Row
from bench.sizes import Context
from bench.slack_jobs import SlackJobs
from bench.world import World

NAME = "real path"
NAME_POSTGRES = "real path pg"
# The peer's 22.5 ms, 242 ms, 17.3 ms and 121 MB, times 0.8, 0.8, 0.8 and 1.0.
GOALS = Goals(ratio_one=1.5, ratio_many=2.0, absolute_one=0.018, absolute_many=0.194)
CPU_TARGET = 0.0138
RSS_TARGET_MB = 121.0


async def run(context: Context) -> list[Row]:
    return await _run(NAME, context, database_url=None)


async def run_postgres(context: Context) -> list[Row]:
    """The same, with the bot's state in PostgreSQL (a database of the benchmark's own)."""
    async with scratch_database() as dsn:
        return await _run(NAME_POSTGRES, context, database_url=dsn)


async def _run(name: str, context: Context, *, database_url: str | None) -> list[Row]:
    sizes = context.sizes
    async with (
        Floor(context.workdir / "floor.db") as floor,
        World(latency=sizes.latency, padding=sizes.result_bytes) as world,
    ):
        settings = slack_settings(
            world, context.workdir / "real.db", max_concurrent_jobs=max(4, sizes.together)
        )
        if database_url is not None:
            settings["database_url"] = database_url
        async with BotProcess(
            settings, role="web", workdir=context.workdir, log=context.log
        ) as bot:
            jobs = SlackJobs(world, f"{bot.url}{EVENTS_PATH}", context)

            async def together(count: int) -> list[float]:
                return await jobs.run([jobs.mention() for _ in range(count)])

            measured, cpu = await measure(floor, together, bot.cpu_seconds, context)
            memory = bot.procs.peak()
    return [
        *floor_rows(name, measured, context),
        *overhead_rows(name, measured.slack, measured, goals=GOALS, context=context),
        cpu_row(name, cpu, target=CPU_TARGET, context=context),
        rss_row(name, memory, target_mb=RSS_TARGET_MB, context=context),
    ]
