"""Rows of the results table, the targets they are judged against, and the table itself."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    PASS = "PASS"
    MISS = "MISS"
    INFO = ""  # a number reported for context, judged against nothing
    SMOKE = "smoke"  # smoke sizes: the number proves the benchmark runs, not the target


@dataclass(frozen=True)
class Row:
    """One measured number, with the target it is judged against when it has one."""

    bench: str
    metric: str
    value: str
    target: str = ""
    verdict: Verdict = Verdict.INFO


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction in 0..1) of a non-empty sample."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def judged(ok: bool, *, smoke: bool) -> Verdict:
    if smoke:
        return Verdict.SMOKE
    return Verdict.PASS if ok else Verdict.MISS


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table (readable in a terminal and pasteable into BENCHMARKS.md)."""
    header = ("benchmark", "metric", "value", "target", "verdict")
    cells = [header] + [(r.bench, r.metric, r.value, r.target, str(r.verdict)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])
