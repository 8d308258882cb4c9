"""The process's one HTTP server: /healthz, /metrics, and whatever adapters mount (Slack events)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum

from aiohttp import web

from bot.ops.metrics import CONTENT_TYPE, Metrics

logger = logging.getLogger(__name__)

Ping = Callable[[], Awaitable[bool]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Paths that answer in every phase; everything else (platform events) only while serving.
_ALWAYS = frozenset({"/healthz", "/metrics"})


class Phase(StrEnum):
    STARTING = "starting"
    SERVING = "serving"
    STOPPING = "shutting down"


class Health:
    """Healthy while serving, the event loop keeps its heartbeat and the store answers."""

    def __init__(
        self,
        ping: Ping,
        *,
        ping_timeout: float = 2.0,
        beat_interval: float = 1.0,
        max_stall: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ping = ping
        self._ping_timeout = ping_timeout
        self._beat_interval = beat_interval
        self._max_stall = max_stall
        self._clock = clock
        self._last_beat = clock()
        self.phase = Phase.STARTING

    async def heartbeat(self) -> None:
        """Record that the loop runs; a blocked loop shows as a beat that is too old."""
        while True:
            self._last_beat = self._clock()
            await asyncio.sleep(self._beat_interval)

    async def check(self) -> str | None:
        """None when healthy, else the reason in a few words."""
        if self.phase is not Phase.SERVING:
            return str(self.phase)
        stalled = self._clock() - self._last_beat
        if stalled > self._max_stall:
            return f"event loop stalled for {stalled:.0f} s"
        try:
            answered = await asyncio.wait_for(self._ping(), self._ping_timeout)
        except TimeoutError:
            return f"store did not answer within {self._ping_timeout:g} s"
        except Exception:
            logger.exception("store ping failed")
            return "store ping failed"
        return None if answered else "store is not answering"


class WebServer:
    """An aiohttp application on HOST:PORT; mount routes before start()."""

    def __init__(self, *, health: Health, metrics: Metrics, host: str, port: int) -> None:
        self._health = health
        self._metrics = metrics
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.app = web.Application(middlewares=[self._only_while_serving])
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics_page)

    @property
    def port(self) -> int | None:
        """The bound port (useful with PORT=0), once started."""
        if self._runner is None or not self._runner.addresses:
            return None
        return int(self._runner.addresses[0][1])

    def routes(self) -> list[str]:
        """Every mounted route as 'METHOD /path', for the start-up log line."""
        found = {
            f"{route.method} {route.resource.canonical}"
            for route in self.app.router.routes()
            if route.resource is not None and route.method != "HEAD"
        }
        return sorted(found, key=lambda entry: entry.split(" ", 1)[1])

    async def start(self) -> None:
        # Probes every few seconds would drown the log: no access log.
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        logger.info(
            "http: listening on %s:%s, serving %s", self._host, self.port, ", ".join(self.routes())
        )

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @web.middleware
    async def _only_while_serving(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        # Before start-up ends and once shutdown begins, platform deliveries get a 503 so the
        # platform redelivers later instead of the event being taken and then dropped.
        if request.path in _ALWAYS or self._health.phase is Phase.SERVING:
            return await handler(request)
        return web.Response(status=503, text=str(self._health.phase), headers={"Retry-After": "30"})

    async def _healthz(self, _: web.Request) -> web.Response:
        problem = await self._health.check()
        if problem is None:
            return web.Response(text="ok")
        return web.Response(status=503, text=problem)

    async def _metrics_page(self, _: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})
