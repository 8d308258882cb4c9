"""Running `python -m bot` as a subprocess, as an operator would, against the local fakes."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from tests.fakes.discord import FakeDiscord
from tests.fakes.gptproto import FakeGptProto
from tests.fakes.slack import FakeSlack

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-cli-run-secret-key-0123456789"
SIGNING_SECRET = "cli-run-signing-secret-abcdef"
LISTENING = re.compile(r"http: listening on 127\.0\.0\.1:(\d+)")


def env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """Only what the test sets: no token of the machine running the tests leaks in."""
    return {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path}/bot.db",
        "HOST": "127.0.0.1",
        **settings,
    }


def run_bot(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    # cwd is tmp_path so that no .env file of the checkout is read.
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=env(tmp_path, **settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def run_bot_async(tmp_path: Path, *args: str, **settings: str) -> tuple[int, str]:
    """The bot as a subprocess while this test's fakes keep serving; (exit code, output)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args,
        env=env(tmp_path, **settings), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


@asynccontextmanager
async def fakes(*, api_key: str = API_KEY) -> AsyncIterator[tuple[FakeGptProto, FakeSlack]]:
    async with FakeGptProto(api_key=api_key) as gpt, FakeSlack() as slack:
        yield gpt, slack


def online_settings(gpt: FakeGptProto, slack: FakeSlack, discord: FakeDiscord) -> dict[str, str]:
    return {
        "GPTPROTO_API_KEY": API_KEY,
        "GPTPROTO_BASE_URL": gpt.url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url,
        "DISCORD_TOKEN": discord.token,
        "DISCORD_API_BASE_URL": discord.api_base,
    }


class BotProcess:
    """A running `python -m bot run`, its output collected as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.port: int | None = None
        self._port_known = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            found = LISTENING.search(line)
            if found:
                self.port = int(found.group(1))
                self._port_known.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def url(self) -> str:
        await asyncio.wait_for(self._port_known.wait(), 30)
        return f"http://127.0.0.1:{self.port}"

    async def exit_code(self, within: float) -> int:
        code = await asyncio.wait_for(self.process.wait(), within)
        await self._reader
        return code


@asynccontextmanager
async def bot_running(
    tmp_path: Path, settings: Mapping[str, str], *args: str
) -> AsyncIterator[BotProcess]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", *args,
        env=env(tmp_path, **settings), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    bot = BotProcess(process)
    try:
        yield bot
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
