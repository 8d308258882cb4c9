"""A server at a 128-file limit, crowded by more idle clients than it has descriptors.

The limit is lowered in a child process (tests/ops/crowd_server.py), never in pytest's own.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.ops.raw import Socket, close_all, get

ROOT = Path(__file__).resolve().parents[2]
FILES = 128
ACCEPT_FAILED = re.compile(r"accepting a connection failed (\d+)")


@dataclass
class Crowded:
    answered: tuple[int, str]
    answered_after: float
    connected: int
    log: list[str]

    def accept_lines(self) -> list[str]:
        return [line for line in self.log if ACCEPT_FAILED.search(line)]

    def accept_failures(self) -> int:
        return sum(int(ACCEPT_FAILED.findall(line)[0]) for line in self.accept_lines())


async def _connect(port: int, count: int, send: bytes) -> list[Socket]:
    sockets: list[Socket] = []
    for _ in range(count):
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        writer.write(send)
        sockets.append((reader, writer))
    return sockets


async def _crowd(idle: int, *cap: str) -> Crowded:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.ops.crowd_server", str(FILES), *cap,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert process.stdin and process.stdout and process.stderr
    sockets: list[Socket] = []
    try:
        port = int(await asyncio.wait_for(process.stdout.readline(), 20))
        loop = asyncio.get_running_loop()
        began = loop.time()
        sockets = await _connect(port, idle, b"GET /slack/ev")
        answered = await get(port, "/healthz", within=8)
        answered_after = loop.time() - began
    finally:
        close_all(sockets)
        process.stdin.close()
        log = (await asyncio.wait_for(process.stderr.read(), 20)).decode()
        await asyncio.wait_for(process.wait(), 20)
    return Crowded(answered, answered_after, len(sockets), log.splitlines())


async def test_at_the_default_cap_descriptors_never_run_out_and_health_answers_at_once() -> None:
    # A header timeout longer than the test: only the idlest making way can let health in.
    crowded = await _crowd(300, "-", "600")
    assert crowded.answered == (200, "ok")
    assert crowded.connected == 300
    assert any(line.endswith(": header timeouts: 0") for line in crowded.log), crowded.log
    assert crowded.accept_lines() == [], crowded.log
    assert "Too many open files" not in "\n".join(crowded.log)
    cap_lines = [line for line in crowded.log if "at the cap of 32 connections" in line]
    assert len(cap_lines) == 2, crowded.log  # the first time, and what followed, at the stop
    assert re.search(r"2[0-9]{2} idle dropped", cap_lines[-1]), cap_lines


async def test_out_of_descriptors_the_accept_errors_are_logged_once_and_serving_resumes() -> None:
    # A cap above the file limit, so accepting does run out: asyncio then reports each try.
    crowded = await _crowd(200, "1000")
    assert crowded.answered == (200, "ok")
    assert crowded.answered_after < 8.0
    lines = crowded.accept_lines()
    assert 1 <= len(lines) <= 3, crowded.log
    assert crowded.accept_failures() > len(lines), lines  # many failures, few lines
    assert len(crowded.log) < 20, crowded.log
