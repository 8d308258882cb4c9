"""How long the bot takes to answer /healthz, asked every TICK over one kept-alive connection.

Each sample is the time from sending the request to having read the whole answer: a loop
that is busy (or waiting for the GIL) answers late, and so would every Slack ack, Discord
heartbeat and other user's reply at that moment.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType

import aiohttp

TICK = 0.005


class HealthPoller:
    """Polls a /healthz URL; `delays` are the seconds each answer took, `unhealthy` non-200s."""

    def __init__(self, url: str, *, tick: float = TICK) -> None:
        self._url = url
        self._tick = tick
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self.delays: list[float] = []
        self.unhealthy = 0

    async def __aenter__(self) -> HealthPoller:
        # One connection, kept alive: no connection set-up inside any sample.
        connector = aiohttp.TCPConnector(limit=1, force_close=False)
        self._session = aiohttp.ClientSession(connector=connector)
        await self._ask()  # the connection is open before the first sample counts
        self.delays.clear()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
        if self._session is not None:
            await self._session.close()

    def start(self) -> None:
        """Poll in the background until stop(); the samples start afresh."""
        self.delays, self.unhealthy = [], 0
        self._task = asyncio.create_task(self._poll())

    async def stop(self) -> list[float]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        return self.delays

    async def sample(self, seconds: float) -> list[float]:
        """Poll for that long (the idle baseline); the delays seen."""
        self.start()
        await asyncio.sleep(seconds)
        return list(await self.stop())

    async def _poll(self) -> None:
        while True:
            took = await self._ask()
            self.delays.append(took)
            await asyncio.sleep(max(0.0, self._tick - took))

    async def _ask(self) -> float:
        assert self._session is not None
        started = time.monotonic()
        async with self._session.get(self._url) as answer:
            await answer.read()
            if answer.status != 200:
                self.unhealthy += 1
        return time.monotonic() - started
