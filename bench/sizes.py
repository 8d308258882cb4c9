"""How big each benchmark runs: the full sizes the targets are about, and tiny smoke sizes."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

# A 1024x1024 PNG as Gemini sends it is about 1.2-1.9 MB; the fake's own PNG of that size is a
# few kilobytes (flat colour), so its answers are padded up to this.
RESULT_BYTES = 1_500_000


@dataclass(frozen=True)
class Sizes:
    smoke: bool
    latency: float = 0.05  # the fake upstream's pause per generation in the overhead runs
    result_bytes: int = RESULT_BYTES
    sequential_jobs: int = 60
    together: int = 20
    together_rounds: int = 6
    photo_jobs: int = 20
    photo_bytes: int = 6_000_000
    photo_side: tuple[int, int] = (4032, 3024)
    health_idle: float = 1.0  # seconds of /healthz polling while the bot idles
    many_jobs: tuple[int, ...] = (1, 20, 50, 200)  # jobs arriving together, through Slack
    many_rounds: tuple[int, ...] = (10, 3, 2, 1)  # rounds of each
    thread_turns: tuple[int, ...] = (10, 100, 1_000)  # turns already in each thread
    thread_refinements: int = 7  # timed refinements per thread
    inflight_jobs: int = 500
    inflight_latency: float = 5.0
    turns: tuple[int, ...] = (1, 2, 5, 10, 20)
    store_threads: int = 100_000
    store_turns: int = 1_000_000
    store_ops: int = 2_000
    preview_side: int = 4096  # a 4K result, over Discord's upload limit as a PNG


FULL = Sizes(smoke=False)
SMOKE = Sizes(
    smoke=True,
    latency=0.01,
    result_bytes=20_000,
    sequential_jobs=3,
    together=3,
    together_rounds=1,
    photo_jobs=2,
    photo_bytes=300_000,
    photo_side=(800, 600),
    health_idle=0.2,
    many_jobs=(1, 2, 4),
    many_rounds=(1, 1, 1),
    thread_turns=(2, 5, 10),
    thread_refinements=1,
    inflight_jobs=20,
    inflight_latency=0.3,
    turns=(1, 2, 5),
    store_threads=1_000,
    store_turns=10_000,
    store_ops=50,
    preview_side=512,
)


@dataclass
class Context:
    """What every benchmark gets: the sizes, a directory of its own, the bot's log, job numbers."""

    sizes: Sizes
    workdir: Path
    log: TextIO
    numbers: itertools.count[int]

    def next_job(self) -> int:
        return next(self.numbers)
