"""`python -m bench [--smoke] [--only NAME ...]`: run the benchmarks and print the table.

Exits 1 when a benchmark fails to run, and (full sizes only) when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    cost,
    inflight,
    long_threads,
    loop_lag,
    many_jobs,
    overhead,
    previews,
    real_discord,
    real_lag,
    real_path,
    store,
)
from bench.report import Row, Verdict, table
from bench.sizes import FULL, SMOKE, Context

LOG_NAME = "bot.log"

Bench = Callable[[Context], Awaitable[list[Row]]]

BENCHES: dict[str, Bench] = {
    overhead.NAME: overhead.run,
    real_path.NAME: real_path.run,
    real_path.NAME_POSTGRES: real_path.run_postgres,
    loop_lag.NAME: loop_lag.run,
    real_lag.NAME: real_lag.run,
    real_discord.NAME: real_discord.run,
    many_jobs.NAME: many_jobs.run,
    long_threads.NAME: long_threads.run,
    inflight.NAME: inflight.run,
    cost.NAME: cost.run,
    store.NAME: store.run,
    previews.NAME: previews.run,
}


def machine() -> str:
    """CPU model, cores and Python version, for the record."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(__import__("os").sched_getaffinity(0))
    return f"{model}, {cores} cores, Python {platform.python_version()}"


def show_log_tail(log: Path, lines: int = 40) -> None:
    """The end of the bot's log, where a failed job says why."""
    tail = log.read_text(encoding="utf-8").splitlines()[-lines:]
    print("the bot's log ends with:", *tail, sep="\n  ", file=sys.stderr)


async def run_all(names: list[str], context: Context, scratch: Path) -> tuple[list[Row], list[str]]:
    """Run the benchmarks in turn; each gets a directory of its own, deleted after it."""
    # A database left behind would be written back to disk under the next benchmark's feet.
    rows: list[Row] = []
    failed: list[str] = []
    for name in names:
        started = time.monotonic()
        print(f"running {name}...", file=sys.stderr, flush=True)
        workdir = scratch / name.replace(" ", "-")
        workdir.mkdir()
        try:
            rows += await BENCHES[name](replace(context, workdir=workdir))
        except Exception:
            traceback.print_exc()
            context.log.flush()
            show_log_tail(scratch / LOG_NAME)
            failed.append(name)
            rows.append(Row(name, "error", "the benchmark failed (traceback above)"))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print(f"  {name}: {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return rows, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves each one runs")
    parser.add_argument("--only", nargs="+", choices=list(BENCHES), default=list(BENCHES))
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        log_path = Path(scratch) / LOG_NAME
        with log_path.open("w", encoding="utf-8") as log:
            context = Context(sizes, Path(scratch), log, itertools.count(1))
            rows, failed = asyncio.run(run_all(args.only, context, Path(scratch)))
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    kind = "smoke sizes" if args.smoke else "full sizes"
    print(f"{when}; {machine()}; {kind}; {time.monotonic() - started:.0f} s in all\n")
    print(table(rows))
    missed = [row for row in rows if row.verdict is Verdict.MISS]
    if failed:
        print(f"\nfailed to run: {', '.join(failed)}")
    if missed:
        print(f"\nmissed targets: {len(missed)}")
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
