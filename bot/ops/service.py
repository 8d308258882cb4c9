"""The long-running bot: adapters on one engine, the HTTP server, background tasks, shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Protocol

from bot.engine import Engine, JobQueue
from bot.models import ThreadKey, Turn
from bot.ops.health import Health, Phase
from bot.ops.web import WebServer

logger = logging.getLogger(__name__)

DEFAULT_GRACE = 30.0
ADAPTER_STOP_TIMEOUT = 10.0

Background = Callable[[], Coroutine[Any, Any, None]]


class Adapter(Protocol):
    """A platform adapter as the service drives it."""

    async def start(self) -> None:
        """Connect and return once serving."""

    async def stop(self) -> None: ...

    async def notify_failed(self, turns: Sequence[tuple[Turn, ThreadKey]]) -> None:
        """Tell users their image was lost to a restart, where the platform allows it."""

    def describe(self) -> str:
        """What this adapter serves, in one line without secrets."""


class Service:
    """Start everything, serve until asked to stop, then drain jobs and close in order."""

    def __init__(
        self,
        *,
        engine: Engine,
        adapters: Mapping[str, Adapter],
        web: WebServer,
        health: Health,
        background: Sequence[Background] = (),
        grace_seconds: float = DEFAULT_GRACE,
        adapter_stop_timeout: float = ADAPTER_STOP_TIMEOUT,
        jobs: JobQueue | None = None,
    ) -> None:
        self._engine = engine
        self._jobs = jobs
        self._adapters = dict(adapters)
        self._web = web
        self._health = health
        self._background = (health.heartbeat, *background)
        self._grace = grace_seconds
        self._adapter_stop_timeout = adapter_stop_timeout
        self._started: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        """Begin the shutdown (safe to call from a signal handler, and more than once)."""
        if self._stop.is_set():
            logger.info("already stopping: waiting for jobs in progress")
        else:
            logger.info("stop requested: finishing jobs in progress (up to %.0f s)", self._grace)
        self._stop.set()

    async def run(self) -> None:
        """Serve until request_stop(); returns once everything is closed."""
        starting = asyncio.create_task(self._start(), name="start")
        stopping = asyncio.create_task(self._stop.wait(), name="wait-for-stop")
        try:
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()  # a failed start raises here, after which all is closed
                await stopping
            else:
                logger.info("stop requested while starting")
                starting.cancel()
                await asyncio.wait({starting})
        finally:
            for task in (starting, stopping):
                task.cancel()
            await self._shutdown()

    async def _start(self) -> None:
        # Interrupted turns are failed before any adapter can accept a new one.
        interrupted = await self._engine.recover(platforms=self._adapters)
        background = (*self._background, self._recover_forever)
        self._tasks = [asyncio.create_task(job(), name=job.__name__) for job in background]
        if self._jobs is not None:
            await self._jobs.open()  # before any delivery can be deferred
        await self._web.start()
        for platform, adapter in self._adapters.items():
            self._started.append(platform)  # stopped at shutdown even if start fails halfway
            await adapter.start()
            logger.info("%s: %s", platform, adapter.describe())
        if self._jobs is not None:
            await self._jobs.start()  # the handlers know the platforms now (the bot's own id)
        self._health.phase = Phase.SERVING
        await self._notify(interrupted)

    async def _recover_forever(self) -> None:
        """Take over, once their lease runs out, the turns of a process that died meanwhile."""
        while True:
            await asyncio.sleep(self._engine.lease_seconds)
            try:
                interrupted = await self._engine.recover(platforms=self._started)
            except Exception:
                logger.warning("could not look for interrupted jobs", exc_info=True)
                continue
            await self._notify(interrupted)

    async def _notify(self, interrupted: Sequence[tuple[Turn, ThreadKey]]) -> None:
        for platform in self._started:
            mine = [(turn, key) for turn, key in interrupted if key.platform == platform]
            if not mine:
                continue
            try:
                await self._adapters[platform].notify_failed(mine)
            except Exception:
                logger.exception("%s: telling users about %d lost jobs failed", platform, len(mine))

    async def _shutdown(self) -> None:
        self._health.phase = Phase.STOPPING
        # The queue's worker takes no more jobs from now on: another process's takes them.
        # Its running jobs are the engine's, which the drain lets finish within the grace.
        queue_stopped = asyncio.create_task(self._stop_queue(), name="stop job queue")
        cancelled = await self._engine.drain(grace=self._grace)
        if cancelled:
            logger.warning("cancelled %d jobs that did not finish in time", cancelled)
        await queue_stopped
        for platform in reversed(self._started):
            await self._stop_adapter(platform)
        self._started.clear()
        if self._jobs is not None:
            try:
                await self._jobs.close()  # after the adapters: they defer until they stop
            except Exception:
                logger.exception("closing the job queue failed")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._web.stop()
        logger.info("stopped")

    async def _stop_queue(self) -> None:
        if self._jobs is None:
            return
        try:
            await self._jobs.stop()
        except Exception:
            logger.exception("stopping the job queue's worker failed")

    async def _stop_adapter(self, platform: str) -> None:
        try:
            await asyncio.wait_for(self._adapters[platform].stop(), self._adapter_stop_timeout)
        except TimeoutError:
            logger.warning("%s: did not stop within %.0f s", platform, self._adapter_stop_timeout)
        except Exception:
            logger.exception("%s: stopping failed", platform)
