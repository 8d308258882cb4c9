"""The bot as production runs it: `python -m bot run --role ROLE`, a child process of the bench.

Its whole environment is the settings given here (nothing leaks in from the bench's own, and
it runs in a scratch directory, so no `.env` is read). PORT=0: the port is read from the
bot's own start-up log line, and it is serving once its /healthz answers 200. Its log goes
into the bench's log; an ERROR line fails the benchmark when the bot stops. Its CPU time and
peak RSS, with those of the processes it starts, come from /proc (bench.procfs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from pathlib import Path
from types import TracebackType
from typing import TextIO

import aiohttp

from bench.bot_side import API_KEY, SIGNING_SECRET
from bench.procfs import ProcessTree
from bench.world import ROOT, World

LISTENING = re.compile(r"http: listening on \S+?:(\d+),")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 40.0
LINE_LIMIT = 4 * 1024 * 1024  # a log line (a traceback included) is far shorter

Setting = str | int | float


def slack_settings(world: World, database: Path, **extra: Setting) -> dict[str, Setting]:
    """Slack over HTTP against the world's fakes (the `web` role serves it)."""
    return {
        "gptproto_api_key": API_KEY,
        "gptproto_base_url": world.gptproto,
        "database_url": f"sqlite:///{database}",
        "slack_bot_token": world.bot_token,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": world.slack_api,
        **extra,
    }


def discord_settings(world: World, database: Path, **extra: Setting) -> dict[str, Setting]:
    """Discord against the world's fakes (the `worker` role serves its gateway)."""
    return {
        "gptproto_api_key": API_KEY,
        "gptproto_base_url": world.gptproto,
        "database_url": f"sqlite:///{database}",
        "discord_token": world.discord["token"],
        "discord_api_base_url": world.discord["api"],
        "discord_gateway_url": world.discord["gateway"],
        "discord_guild_ids": world.discord["guild"],
        **extra,
    }


def child_env(settings: dict[str, Setting]) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.environ.get("BENCH_BOT_ROOT") or str(ROOT),  # another tree: A/B runs
        "HOST": "127.0.0.1",
        "PORT": "0",
        "LOG_LEVEL": "INFO",
    }
    return env | {name.upper(): str(value) for name, value in settings.items()}


class BotProcess:
    """`python -m bot run --role ROLE` with these settings, from start-up until SIGTERM."""

    def __init__(
        self, settings: dict[str, Setting], *, role: str, workdir: Path, log: TextIO
    ) -> None:
        self._env = child_env(settings)
        self._role = role
        self._workdir = workdir
        self._log = log
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._port: asyncio.Future[int] | None = None
        self.errors: list[str] = []
        self.url = ""

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def __aenter__(self) -> BotProcess:
        self._port = asyncio.get_running_loop().create_future()
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--role", self._role,
            cwd=self._workdir, env=self._env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, limit=LINE_LIMIT,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        try:
            async with asyncio.timeout(START_TIMEOUT):
                self.url = f"http://127.0.0.1:{await self._started()}"
                await self._serving()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        code = await self._stop()
        if exc is not None:
            return
        if code != 0:
            raise RuntimeError(f"the bot exited with {code} (its log is in the bench's log)")
        if self.errors:
            raise RuntimeError(f"the bot logged {len(self.errors)} errors: {self.errors[:3]}")

    async def _started(self) -> int:
        """The bound port, once the bot has logged it (or the bot's exit status, raised)."""
        assert self._process is not None and self._port is not None
        exited = asyncio.ensure_future(self._process.wait())
        try:
            await asyncio.wait({self._port, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
        if not self._port.done():
            raise RuntimeError(f"the bot exited with {self._process.returncode} while starting")
        return self._port.result()

    async def _serving(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(f"{self.url}/healthz") as answer:
                    if answer.status == 200:
                        return
                await asyncio.sleep(0.05)

    async def _read(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        while line := (await self._process.stderr.readline()).decode(errors="replace"):
            self._log.write(f"[bot {self._role}] {line}")
            found = LISTENING.search(line)
            if found and self._port is not None and not self._port.done():
                self._port.set_result(int(found.group(1)))
            fields = line.split(" ", 3)
            if len(fields) > 2 and fields[2] in ("ERROR", "CRITICAL"):
                self.errors.append(line.strip())

    async def _stop(self) -> int | None:
        process = self._process
        if process is None:
            return None
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._log.flush()
        return process.returncode

    @property
    def procs(self) -> ProcessTree:
        """The bot and the processes it started (its image workers): CPU, peak RSS."""
        return ProcessTree(self.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the bot and its workers so far."""
        return self.procs.cpu_seconds()
