"""Cost grows linearly in jobs: overhead, CPU per job and peak RSS of the bot process when 1,
20, 50 and 200 Slack mentions (each with a small PNG) arrive together.

One bot process (`python -m bot run --role web`, MAX_CONCURRENT_JOBS and MAX_QUEUE at the
largest size, so no job waits in the queue) serves every size in turn, smallest first; its
VmHWM is reset (/proc/<pid>/clear_refs) before each size, so each peak is that size's own.
A least-squares line through the sizes gives the cost of each further job arriving at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.slack import EVENTS_PATH
from bench.bot_process import BotProcess, slack_settings
from bench.outside import memory_text
from bench.procfs import Memory
from bench.report import Row, ms, percentile
from bench.sizes import Context
from bench.slack_jobs import SlackJobs
from bench.world import World

NAME = "many jobs"


@dataclass(frozen=True)
class AtSize:
    count: int
    overheads: list[float]
    cpu_per_job: float
    peak: Memory


def fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope of ys over xs, and r squared (1: on a straight line)."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    syy = sum((y - mean_y) ** 2 for y in ys)
    slope = sxy / sxx if sxx else 0.0
    r2 = (sxy * sxy) / (sxx * syy) if sxx and syy else 1.0
    return slope, r2


async def at_size(bot: BotProcess, jobs: SlackJobs, count: int, rounds: int) -> AtSize:
    bot.procs.reset_peak()
    started = bot.cpu_seconds()
    overheads: list[float] = []
    for _ in range(rounds):
        overheads += await jobs.run([jobs.mention() for _ in range(count)])
    cpu = (bot.cpu_seconds() - started) / (count * rounds)
    return AtSize(count, overheads, cpu, bot.procs.peak())


def rows(found: list[AtSize], idle_mb: float) -> list[Row]:
    out = [Row(NAME, "RSS of the bot and its workers, idle after a warm-up", f"{idle_mb:.0f} MB")]
    for size in found:
        samples = size.overheads
        out.append(
            Row(
                NAME,
                f"{size.count} together: overhead p50 / p99; CPU per job; peak RSS",
                f"{ms(percentile(samples, 0.5))} / {ms(percentile(samples, 0.99))}; "
                f"{ms(size.cpu_per_job)}; {memory_text(size.peak)}",
            )
        )
    counts = [float(size.count) for size in found]
    slope, r2 = fit(counts, [percentile(size.overheads, 0.5) for size in found])
    metric = "overhead p50: slope per job arriving together (line fit)"
    out.append(Row(NAME, metric, f"{ms(slope)} per job (r² {r2:.3f})"))
    slope, r2 = fit(counts, [size.peak.tree_mb for size in found])
    metric = "peak RSS: slope per job arriving together (line fit)"
    out.append(Row(NAME, metric, f"{slope:.2f} MB per job (r² {r2:.3f})"))
    cpu = [size.cpu_per_job for size in found]
    # CPU time is counted in clock ticks (10 ms): a small smoke size may read as zero.
    ratio = f"{cpu[-1] / cpu[0]:.2f}x" if cpu[0] > 0 else "n/a (smallest size under one clock tick)"
    out.append(Row(NAME, "CPU per job, largest size / smallest", ratio))
    return out


async def run(context: Context) -> list[Row]:
    sizes = context.sizes
    most = max(sizes.many_jobs)
    async with World(latency=sizes.latency, padding=sizes.result_bytes) as world:
        settings = slack_settings(
            world, context.workdir / "many.db", max_concurrent_jobs=most, max_queue=most
        )
        async with BotProcess(
            settings, role="web", workdir=context.workdir, log=context.log
        ) as bot:
            jobs = SlackJobs(world, f"{bot.url}{EVENTS_PATH}", context)
            await jobs.run([jobs.mention()])  # warm-up: pools, caches
            idle = bot.procs.rss_mb()
            found = [
                await at_size(bot, jobs, count, rounds)
                for count, rounds in zip(sizes.many_jobs, sizes.many_rounds, strict=True)
            ]
    return rows(found, idle)
