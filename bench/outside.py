"""What the benchmarks that run the bot as a process share: the phases of an overhead run
(floor blocks, one job at a time, rounds arriving together, CPU counted around each), and
their rows: overhead against the floor and against absolute goals, CPU per job, peak RSS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.floor import Floor, answer_image
from bench.overhead import Measured, Samples, floors
from bench.procfs import Memory
from bench.report import Row, judged, ms, percentile
from bench.sizes import Context


@dataclass(frozen=True)
class Goals:
    """Overhead p50 at most ratio x the floor p50, and (when set) at most an absolute time."""

    ratio_one: float = 1.5
    ratio_many: float = 2.0
    absolute_one: float | None = None
    absolute_many: float | None = None


@dataclass
class Cpu:
    """CPU seconds of the bot and the jobs they were spent on, phase by phase."""

    one: float = 0.0
    one_jobs: int = 0
    many: float = 0.0
    many_jobs: int = 0

    @property
    def per_job(self) -> float:
        return (self.one + self.many) / max(1, self.one_jobs + self.many_jobs)


# Jobs arriving together (1: one job) -> each one's overhead, once the bot is done with them.
Runner = Callable[[int], Awaitable[list[float]]]


async def measure(
    floor: Floor, run: Runner, cpu_seconds: Callable[[], float], context: Context
) -> tuple[Measured, Cpu]:
    """Floors, jobs one at a time, floors, rounds together, floors; the bot's CPU per phase.

    The floor is taken while the bot idles, never between its jobs (it would pay for the
    bot's trailing work); the CPU is read right around each phase, so it is the jobs' alone.
    The path's overheads go in Measured.slack, whichever platform the path is.
    """
    sizes = context.sizes
    measured, cpu = Measured(), Cpu()
    await floor.job(answer_image(0, sizes.result_bytes))  # warm-ups: pools, caches
    await run(1)
    await floors(floor, measured, context)
    started = cpu_seconds()
    for _ in range(sizes.sequential_jobs):
        measured.slack.one += await run(1)
    cpu.one, cpu.one_jobs = cpu_seconds() - started, sizes.sequential_jobs
    await floors(floor, measured, context)
    started = cpu_seconds()
    for _ in range(sizes.together_rounds):
        measured.slack.many += await run(sizes.together)
    cpu.many, cpu.many_jobs = cpu_seconds() - started, sizes.together * sizes.together_rounds
    await floors(floor, measured, context)
    return measured, cpu


def floor_rows(label: str, measured: Measured, context: Context) -> list[Row]:
    parts = measured.floor_parts
    decode, store, upload = (
        percentile([getattr(p, name) for p in parts], 0.5) for name in ("decode", "store", "upload")
    )
    together = percentile(measured.floor.many, 0.5)
    return [
        Row(
            label,
            "floor: decode / store / upload (p50)",
            f"{ms(decode)} / {ms(store)} / {ms(upload)}",
        ),
        Row(label, f"floor: {context.sizes.together} together (p50)", ms(together)),
    ]


def overhead_rows(
    label: str, paid: Samples, measured: Measured, *, goals: Goals, context: Context
) -> list[Row]:
    """p50 / p99 at 1 and N together; each p50 against its floor, and its absolute goal."""
    sizes = context.sizes
    floor_one = percentile([p.slack for p in measured.floor_parts], 0.5)
    floor_many = percentile(measured.floor.many, 0.5)
    rows: list[Row] = []
    many = f"{sizes.together} together"
    cases = (
        ("1 job", paid.one, floor_one, goals.ratio_one, goals.absolute_one),
        (many, paid.many, floor_many, goals.ratio_many, goals.absolute_many),
    )
    for what, samples, floor, ratio_goal, absolute in cases:
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        rows.append(Row(label, f"{what}: p50 / p99", f"{ms(p50)} / {ms(p99)}"))
        ratio = p50 / floor
        rows.append(
            Row(
                label,
                f"{what}: p50 / floor p50",
                f"{ratio:.2f}x (floor {ms(floor)})",
                f"<= {ratio_goal:g}x",
                judged(ratio <= ratio_goal, smoke=sizes.smoke),
            )
        )
        if absolute is not None:
            verdict = judged(p50 <= absolute, smoke=sizes.smoke)
            rows.append(Row(label, f"{what}: p50", ms(p50), f"<= {ms(absolute)}", verdict))
    return rows


def cpu_row(label: str, cpu: Cpu, *, target: float | None, context: Context) -> Row:
    together = context.sizes.together
    one = cpu.one / max(1, cpu.one_jobs)
    many = cpu.many / max(1, cpu.many_jobs)
    value = f"{ms(cpu.per_job)} (1 at a time {ms(one)}, {together} together {ms(many)})"
    if target is None:
        return Row(label, "CPU per job, bot process (user + system)", value)
    return Row(
        label,
        "CPU per job, bot process (user + system)",
        value,
        f"<= {ms(target)}",
        judged(cpu.per_job <= target, smoke=context.sizes.smoke),
    )


def memory_text(memory: Memory) -> str:
    if memory.processes == 1:
        return f"{memory.tree_mb:.0f} MB"
    others = memory.tree_mb - memory.main_mb
    return (
        f"{memory.tree_mb:.0f} MB (main {memory.main_mb:.0f} MB + "
        f"{memory.processes - 1} processes it started {others:.0f} MB)"
    )


def rss_row(label: str, memory: Memory, *, target_mb: float | None, context: Context) -> Row:
    """The peak of the bot and the processes it started (image workers), each its VmHWM."""
    metric = "peak RSS of the bot process and its workers (VmHWM)"
    if target_mb is None:
        return Row(label, metric, memory_text(memory))
    return Row(
        label,
        metric,
        memory_text(memory),
        f"<= {target_mb:g} MB",
        judged(memory.tree_mb <= target_mb, smoke=context.sizes.smoke),
    )
