"""The process's one HTTP server: /healthz, /metrics, and whatever adapters mount (Slack events)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bot.ops.guard import AcceptErrors, ConnectionGuard, connection_cap
from bot.ops.health import Health, Phase
from bot.ops.metrics import CONTENT_TYPE, Metrics

if TYPE_CHECKING:
    from bot.ops.files import FileRoute
    from bot.ops.links import Links

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Paths that answer in every phase; everything else (platform events) only while serving.
_ALWAYS = frozenset({"/healthz", "/metrics"})
# Slack's events and interactions are a few KiB; nothing this server takes comes near this.
MAX_BODY = 1024 * 1024
# Above the idle timeouts of common load balancers (60 s): the proxy, not the bot, should be the
# one to close a pooled connection, or a request sent as the bot closes it fails with a 502.
KEEPALIVE_TIMEOUT = 75.0


class WebServer:
    """An aiohttp application on HOST:PORT that sheds slow and idle clients; mount, then start()."""

    def __init__(
        self,
        *,
        health: Health,
        metrics: Metrics,
        host: str,
        port: int,
        max_connections: int | None = None,
        header_timeout: float = 10.0,
        body_timeout: float = 10.0,
        keepalive_timeout: float = KEEPALIVE_TIMEOUT,
        max_body: int = MAX_BODY,
        log_interval: float = 10.0,
    ) -> None:
        self._health = health
        self._metrics = metrics
        self._host = host
        self._port = port
        self._body_timeout = body_timeout
        self._keepalive_timeout = keepalive_timeout
        self._max_body = max_body
        self.guard = ConnectionGuard(
            max_connections=max_connections or connection_cap(),
            header_timeout=header_timeout,
            log_interval=log_interval,
        )
        self._accept_errors = AcceptErrors(interval=log_interval)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._files: FileRoute | None = None
        self.app = web.Application(
            middlewares=[self._defend, self._only_while_serving], client_max_size=max_body
        )
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics_page)

    @property
    def port(self) -> int | None:
        """The bound port (useful with PORT=0), once started."""
        if self._listener is None or not self._listener.sockets:
            return None
        return int(self._listener.sockets[0].getsockname()[1])

    @property
    def links(self) -> Links | None:
        """What signs links to results' exact bytes, when this server serves them (PUBLIC_URL)."""
        return self._files.links if self._files is not None else None

    def serve_files(self, files: FileRoute) -> None:
        """Serve GET /files/{sha}.{ext} for signed links, behind the same defences as the rest."""
        files.mount(self.app)
        self._files = files

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
        runner = web.AppRunner(
            self.app,
            access_log=None,
            shutdown_timeout=5.0,
            keepalive_timeout=self._keepalive_timeout,
            # What is left of a refused body is read and thrown away, for no longer than a
            # body may take, so the client sees the answer rather than a reset.
            lingering_time=self._body_timeout,
        )
        await runner.setup()
        try:
            self._listener = await self._listen(runner)
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._accept_errors.install(asyncio.get_running_loop())
        logger.info(
            "http: listening on %s:%s, serving %s (at most %d connections)",
            self._host,
            self.port,
            ", ".join(self.routes()),
            self.guard.max_connections,
        )

    async def _listen(self, runner: web.AppRunner) -> asyncio.Server:
        # Instead of a TCPSite: aiohttp's documented low-level Server is the protocol factory,
        # and the guard stands in front of it to see every connection.
        server = runner.server
        if server is None:
            raise RuntimeError("the runner is not set up")
        # asyncio accepts up to `backlog` sockets per tick before any is admitted: kept under
        # the cap so a burst never overshoots the descriptor budget by more than half again.
        backlog = max(1, min(128, self.guard.max_connections // 2))
        return await asyncio.get_running_loop().create_server(
            self.guard.wrap(server), self._host, self._port, backlog=backlog
        )

    async def stop(self) -> None:
        listener, self._listener = self._listener, None
        runner, self._runner = self._runner, None
        if listener is not None:
            listener.close()
        if runner is not None:
            await runner.cleanup()
        self._accept_errors.uninstall()
        self.guard.final_report()

    @web.middleware
    async def _defend(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.guard.headers_received(request.transport)
        await self._read_body(request)
        with self.guard.busy(request.transport):
            return await handler(request)

    async def _read_body(self, request: web.Request) -> None:
        # Read here, within a deadline, so no handler waits on a client that trickles its body;
        # request.read() keeps it for the handler's own read(), text() or json().
        size = request.content_length
        if size is not None and size > self._max_body:
            raise web.HTTPRequestEntityTooLarge(max_size=self._max_body, actual_size=size)
        if not request.can_read_body:
            return
        try:
            async with asyncio.timeout(self._body_timeout):
                await request.read()  # past client_max_size, aiohttp answers 413 itself
        except TimeoutError:
            logger.debug("http: dropped a body not sent within %g s", self._body_timeout)
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPRequestTimeout() from None

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
