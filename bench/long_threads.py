"""Cost stays flat in thread length: the overhead of one more refinement in Slack threads that
already hold 10, 100 and 1,000 turns.

The threads are seeded through SqliteStore itself (bench.store_seed.append_turn: each turn
pending, then done with a tiny output image and its parts, the head moved) before the bot
starts on that database as `python -m bot run --role web`. Then each thread gets one
refinement untimed (its head becomes a full 1.5 MB answer, as every later one is), and the
timed ones: plain messages in the thread, the threads taking turns, one job at a time.
"""

from __future__ import annotations

import time
from pathlib import Path

from adapters.slack import EVENTS_PATH
from bench.bot_process import BotProcess, slack_settings
from bench.report import Row, judged, ms, percentile
from bench.sizes import Context
from bench.slack_jobs import SlackJobs
from bench.store_seed import append_turn, prompt
from bench.world import World
from bot.models import ThreadKey
from storage.sqlite import SqliteStore

NAME = "long threads"
FLAT_TARGET = 1.5  # growing with the thread, 1,000 turns would cost ~100x what 10 do
REFINE = "make the sky a little warmer"
MODEL = "gemini-2.5-flash-image"


async def seed(path: Path, lengths: tuple[int, ...], stamp: int) -> dict[int, str]:
    """One thread per length with that many turns; each thread's root ts by its length."""
    store = SqliteStore(path)
    await store.open()
    roots: dict[int, str] = {}
    try:
        for length in lengths:
            root = f"{stamp}.{length:06d}"
            thread = await store.create_thread(ThreadKey("slack", "T0001", "C0001", root))
            parent: int | None = None
            for number in range(1, length + 1):
                turn = await append_turn(
                    store,
                    thread.id,
                    parent_id=parent,
                    user="U000000",
                    prompt=prompt(number),
                    ratio="1:1",
                    model=MODEL,
                )
                parent = turn.id
            roots[length] = root
    finally:
        await store.close()
    return roots


async def refine_all(jobs: SlackJobs, roots: dict[int, str], rounds: int) -> dict[int, list[float]]:
    """`rounds` timed refinements of every thread, the threads taking turns."""
    timed: dict[int, list[float]] = {length: [] for length in roots}
    for _ in range(rounds):
        for length, root in roots.items():
            timed[length] += await jobs.run([jobs.refinement(root, prompt=REFINE)])
    return timed


async def run(context: Context) -> list[Row]:
    sizes = context.sizes
    lengths = sizes.thread_turns
    database = context.workdir / "threads.db"
    started = time.monotonic()
    roots = await seed(database, lengths, int(time.time()) - 86_400)
    seeded = time.monotonic() - started
    async with World(latency=sizes.latency, padding=sizes.result_bytes) as world:
        settings = slack_settings(world, database)
        async with BotProcess(
            settings, role="web", workdir=context.workdir, log=context.log
        ) as bot:
            jobs = SlackJobs(world, f"{bot.url}{EVENTS_PATH}", context)
            for root in roots.values():  # untimed: every head becomes a full-size answer
                await jobs.run([jobs.refinement(root, prompt=REFINE)])
            timed = await refine_all(jobs, roots, sizes.thread_refinements)
    return rows(timed, seeded, context)


def rows(timed: dict[int, list[float]], seeded: float, context: Context) -> list[Row]:
    lengths = list(timed)
    label = f"{sum(lengths):,} turns in {len(lengths)} threads: seeded in"
    out = [Row(NAME, label, f"{seeded:.1f} s")]
    for length, samples in timed.items():
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        out.append(
            Row(NAME, f"{length:,} turns: refinement overhead p50 / p99", f"{ms(p50)} / {ms(p99)}")
        )
    shortest, longest = min(lengths), max(lengths)
    ratio = percentile(timed[longest], 0.5) / percentile(timed[shortest], 0.5)
    verdict = judged(ratio <= FLAT_TARGET, smoke=context.sizes.smoke)
    metric = f"{longest:,}-turn / {shortest:,}-turn thread, p50"
    out.append(Row(NAME, metric, f"{ratio:.2f}x", f"<= {FLAT_TARGET:g}x", verdict))
    return out
