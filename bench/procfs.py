"""What Linux's /proc says of a process and everything it started (the bot's image workers,
multiprocessing's resource tracker): CPU time and peak resident set, process by process.

CPU time is utime + stime from /proc/<pid>/stat (every thread of a process), plus, for the
processes that already ended and were reaped, the cutime + cstime of their parent. The peak
is VmHWM from /proc/<pid>/status, which writing 5 to /proc/<pid>/clear_refs starts afresh.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (field 3, the state, first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def children(pid: int) -> list[int]:
    """The live children of a process (started by any of its threads)."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def tree(pid: int) -> list[int]:
    """The process and all its live descendants, the process first."""
    found, waiting = [], [pid]
    while waiting:
        current = waiting.pop()
        found.append(current)
        waiting += children(current)
    return found


@dataclass(frozen=True)
class Memory:
    """Peak RSS in MB: of the process itself, and summed over it and its descendants."""

    main_mb: float
    tree_mb: float
    processes: int


class ProcessTree:
    """Readings of one process and its descendants."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu_seconds(self) -> float:
        """User + system CPU of the process, its live descendants and its reaped children."""
        ticks = 0
        for index, pid in enumerate(tree(self.pid)):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                fields = _stat_fields(pid)
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
                if index == 0:
                    ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
        return ticks / TICKS

    def peak(self) -> Memory:
        """VmHWM of the process, and the sum of every process's VmHWM in the tree (the most
        they can have held at once)."""
        pids = tree(self.pid)
        peaks = []
        for pid in pids:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                peaks.append(_status_kb(pid, "VmHWM") / 1024)
        return Memory(main_mb=peaks[0], tree_mb=sum(peaks), processes=len(peaks))

    def rss_mb(self) -> float:
        """The resident set now, summed over the tree."""
        total = 0
        for pid in tree(self.pid):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                total += _status_kb(pid, "VmRSS")
        return total / 1024

    def reset_peak(self) -> None:
        """Start every VmHWM in the tree afresh from the process's RSS now."""
        for pid in tree(self.pid):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")
