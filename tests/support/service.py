"""A stand-in platform adapter and a running Service on port 0, for the runner's tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from bot.engine import Engine
from bot.errors import BotError
from bot.models import Reply, Request, ThreadKey, Turn
from bot.ops import Health, Metrics, Phase, Service, WebServer
from storage.sqlite import SqliteStore


class FakeAdapter:
    """Stands in for a platform: runs jobs in handler tasks and 'posts' what the engine returns."""

    def __init__(self, platform: str, engine: Engine, events: list[str]) -> None:
        self.platform = platform
        self.engine = engine
        self.events = events
        self.posted: list[Reply | str] = []
        self.failed: list[tuple[Turn, ThreadKey]] = []
        self.start_gate: asyncio.Event | None = None
        self.start_error: BotError | None = None
        self.stop_gate: asyncio.Event | None = None

    async def start(self) -> None:
        self.events.append(f"{self.platform} start")
        if self.start_gate is not None:
            await self.start_gate.wait()
        if self.start_error is not None:
            raise self.start_error

    async def stop(self) -> None:
        self.events.append(f"{self.platform} stop")
        if self.stop_gate is not None:
            await self.stop_gate.wait()

    async def notify_failed(self, turns: Sequence[tuple[Turn, ThreadKey]]) -> None:
        self.failed.extend(turns)

    def describe(self) -> str:
        return f"{self.platform} test adapter in channel C1"

    def handle(self, job: Request) -> asyncio.Task[None]:
        """A platform event: the handler task runs the job and posts the outcome."""

        async def handler() -> None:
            try:
                reply = await self.engine.imagine(job)
            except BotError as exc:
                self.posted.append(exc.user_message)
                return
            await asyncio.sleep(0)  # posting is more awaiting after the engine returns
            self.posted.append(reply)
            self.events.append(f"{self.platform} posted")

        return asyncio.create_task(handler())


class Running:
    def __init__(self, service: Service, task: asyncio.Task[None], web: WebServer) -> None:
        self.service, self.task, self.web = service, task, web

    @property
    def phase(self) -> Phase:
        return self.service._health.phase

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web.port}"

    async def get(self, path: str) -> tuple[int, str, str]:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as response:
            return response.status, await response.text(), response.headers["Content-Type"]

    async def stopped(self, within: float = 10.0) -> None:
        await asyncio.wait_for(self.task, within)


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


@asynccontextmanager
async def running(
    engine: Engine,
    store: SqliteStore,
    adapters: dict[str, FakeAdapter],
    *,
    grace: float = 5.0,
    metrics: Metrics | None = None,
    mount: Callable[[web.Application], None] | None = None,
    adapter_stop_timeout: float = 5.0,
) -> AsyncIterator[Running]:
    health = Health(store.ping)
    server = WebServer(
        health=health, metrics=metrics or Metrics(CollectorRegistry()), host="127.0.0.1", port=0
    )
    if mount is not None:
        mount(server.app)
    service = Service(
        engine=engine,
        adapters=adapters,
        web=server,
        health=health,
        grace_seconds=grace,
        adapter_stop_timeout=adapter_stop_timeout,
    )
    task = asyncio.create_task(service.run())
    try:
        yield Running(service, task, server)
    finally:
        service.request_stop()
        await asyncio.wait({task}, timeout=10)


async def serving(run: Running) -> None:
    await until(lambda: run.task.done() or run.web.port is not None)
    await until(lambda: run.task.done() or run.phase is Phase.SERVING)
