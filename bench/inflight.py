"""In flight: many jobs waiting on a slow upstream at once, MAX_CONCURRENT_JOBS equal to them.

The bot runs in a child process of its own (`python -m bench.inflight --child ...`) so that its
peak RSS is its own, and the fake upstream runs in yet another (bench.world_process), so that
the fake's CPU and memory count against neither.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bot_side import bench_settings, job_request, running_engine
from bench.report import Row, judged
from bench.sizes import Context
from bench.world import ROOT, World

NAME = "in flight"
SLACK_SECONDS = 1.2  # the wall time allowed beyond the upstream's latency: 6.2 s for 5 s
RSS_TARGET_MB = 300
PROMPT = "a paper boat on a stormy sea"


def reset_peak_rss() -> bool:
    """Start the peak (VmHWM) afresh: a forked child inherits its parent's high-water mark."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """The process's peak RSS: VmHWM where Linux has it, else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


async def child(jobs: int, latency: float) -> dict[str, Any]:
    """Run the jobs in this process; what it measured, as JSON-ready values."""
    if not reset_peak_rss():
        raise RuntimeError("cannot reset the peak RSS (/proc/self/clear_refs)")
    with tempfile.TemporaryDirectory(prefix="bench-inflight-") as scratch:
        log = (Path(scratch) / "bot.log").open("w", encoding="utf-8")
        async with World(latency=latency) as world:
            settings = bench_settings(
                gptproto=world.gptproto,
                database=Path(scratch) / "inflight.db",
                max_concurrent_jobs=jobs,
                max_queue=jobs,
            )
            async with running_engine(settings, log=log) as engine:
                await engine.imagine(job_request(0, PROMPT))  # warm-up: pools, caches
                await world.reset()
                before = peak_rss_mb()
                started = time.monotonic()
                replies = await asyncio.gather(
                    *(engine.imagine(job_request(job, PROMPT)) for job in range(1, jobs + 1))
                )
                wall = time.monotonic() - started
                stats = await world.stats()
        log.close()
    return {
        "wall": wall,
        "images": sum(len(reply.images) for reply in replies),
        "peak_in_flight": stats["peak_in_flight"],
        "rss_before_mb": before,
        "rss_peak_mb": peak_rss_mb(),
    }


async def run(context: Context) -> list[Row]:
    sizes = context.sizes
    jobs, latency = sizes.inflight_jobs, sizes.inflight_latency
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.inflight",
        "--child",
        "--jobs",
        str(jobs),
        "--latency",
        str(latency),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the in-flight child exited with {process.returncode}")
    result = json.loads(output.decode().strip().splitlines()[-1])
    if result["images"] != jobs:
        raise RuntimeError(f"{result['images']} images for {jobs} jobs")
    return rows(result, jobs, latency, smoke=sizes.smoke)


def rows(result: dict[str, Any], jobs: int, latency: float, *, smoke: bool) -> list[Row]:
    limit = latency + SLACK_SECONDS
    label = f"{jobs} jobs, {latency:g} s upstream"
    return [
        Row(
            NAME,
            f"{label}: wall time",
            f"{result['wall']:.2f} s",
            f"<= {limit:g} s",
            judged(result["wall"] <= limit, smoke=smoke),
        ),
        Row(
            NAME,
            "upstream requests at once (peak)",
            str(result["peak_in_flight"]),
            f"= {jobs}",
            judged(result["peak_in_flight"] == jobs, smoke=smoke),
        ),
        Row(
            NAME,
            "peak RSS of the bot (idle before)",
            f"{result['rss_peak_mb']:.0f} MB ({result['rss_before_mb']:.0f} MB)",
            f"<= {RSS_TARGET_MB} MB",
            judged(result["rss_peak_mb"] <= RSS_TARGET_MB, smoke=smoke),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", action="store_true", required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--latency", type=float, required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(child(args.jobs, args.latency))))


if __name__ == "__main__":
    main()
