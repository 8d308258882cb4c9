"""The bench's side of bench.world_process: start it, command it, read what it reports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0


class World:
    """The fake upstream and fake Slack (and Discord, when asked), running in a child process."""

    def __init__(self, *, latency: float, padding: int = 0, discord: bool = False) -> None:
        self._args = ["--latency", str(latency), "--padding", str(padding)]
        if discord:
            self._args.append("--discord")
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._events: dict[str, dict[str, asyncio.Future[dict[str, Any]]]] = {
            "served": {},
            "upload": {},
            "sent": {},
            "settled": {},
            "reply": {},
        }
        self.gptproto = ""
        self.slack_api = ""
        self.bot_token = ""
        self.discord: dict[str, str] = {}  # api, gateway, token, guild (with discord=True)

    async def __aenter__(self) -> World:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.world_process",
            *self._args,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        ready = await asyncio.wait_for(self._answers.get(), START_TIMEOUT)
        self.gptproto, self.slack_api = ready["gptproto"], ready["slack_api"]
        self.bot_token = ready["bot_token"]
        self.discord = {
            key.removeprefix("discord_"): value
            for key, value in ready.items()
            if key.startswith("discord_")
        }
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ConnectionError):
            await self._send({"cmd": "quit"})
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def stats(self) -> dict[str, Any]:
        """The fake upstream's peak concurrency and generations served since the last reset."""
        await self._send({"cmd": "stats"})
        answer: dict[str, Any] = (await self._answer())["stats"]
        return answer

    async def reset(self) -> None:
        await self._send({"cmd": "reset"})
        await self._answer()

    async def mention(self, *, url: str, secret: str, jobs: list[dict[str, str]]) -> None:
        """Have the fake Slack deliver one signed event per job, at once (bench.world_slack:
        job, text, ts, user; `attach` a file; `thread_ts` for a message in a thread)."""
        await self._send({"cmd": "mentions", "url": url, "secret": secret, "jobs": jobs})

    async def discord_mention(self, jobs: list[dict[str, str]]) -> None:
        """Have the fake Discord send one mention with a small PNG per job (job, text, user)."""
        await self._send({"cmd": "discord", "jobs": jobs})

    async def event(self, kind: str, key: str, *, within: float = 30.0) -> dict[str, Any]:
        """The report of one kind (served, upload, sent, settled, reply) for a job or thread."""
        future = self._future(kind, key)
        try:
            return await asyncio.wait_for(asyncio.shield(future), within)
        finally:
            if future.done():
                del self._events[kind][key]

    def _future(self, kind: str, key: str) -> asyncio.Future[dict[str, Any]]:
        waiting = self._events[kind]
        if key not in waiting:
            waiting[key] = asyncio.get_running_loop().create_future()
        return waiting[key]

    async def _answer(self) -> dict[str, Any]:
        return await asyncio.wait_for(self._answers.get(), START_TIMEOUT)

    async def _send(self, command: dict[str, Any]) -> None:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write((json.dumps(command) + "\n").encode())
        await self._process.stdin.drain()

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        while line := await self._process.stdout.readline():
            report: dict[str, Any] = json.loads(line)
            kind = next((k for k in self._events if k in report), None)
            if kind is None:
                await self._answers.put(report)
                continue
            future = self._future(kind, str(report[kind]))
            if not future.done():
                future.set_result(report)
