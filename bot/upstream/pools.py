"""The upstream's connection pools: one aiohttp pool, or several small httpx pools used as one."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from typing import Literal

import httpx

Wire = Literal["aiohttp", "httpx"]

# httpcore's pool does work quadratic in its connection count on every request event, which
# stalls the loop for seconds at hundreds of connections; small pools used together do not.
POOL_SIZE = 8


class Pools:
    """httpx clients used as one, each request going to the least busy; opened on first use.

    On the aiohttp wire that is a single client: aiohttp's pool has no quadratic cost.
    """

    def __init__(self, *, max_connections: int, timeout: float, wire: Wire = "aiohttp") -> None:
        self._wire = wire
        self._count = 1 if wire == "aiohttp" else math.ceil(max_connections / POOL_SIZE)
        self._per_pool = math.ceil(max_connections / self._count)
        self._timeout = timeout
        self._clients: list[httpx.AsyncClient] = []
        self._busy: list[int] = []
        self._opening = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[httpx.AsyncClient]:
        """A client for one request; the pools open on first use, never at construction."""
        if not self._clients:
            await self._open()
        index = min(range(self._count), key=self._busy.__getitem__)
        self._busy[index] += 1
        try:
            yield self._clients[index]
        finally:
            self._busy[index] -= 1

    async def _open(self) -> None:
        async with self._opening:
            if self._clients:
                return
            # The CA bundle takes tens of milliseconds to load, aiohttp a quarter second to
            # import: neither on the event loop.
            clients = await asyncio.to_thread(self._build)
            self._busy = [0] * self._count
            self._clients = clients

    def _build(self) -> list[httpx.AsyncClient]:
        context = httpx.create_ssl_context()
        if self._wire == "aiohttp":
            # Imported on first use: aiohttp's client costs a quarter second to import, which
            # `check`, the terminal's start and the httpx wire need not pay.
            from bot.upstream.transport import AiohttpTransport

            transport = AiohttpTransport(max_connections=self._per_pool, ssl_context=context)
            return [httpx.AsyncClient(transport=transport, timeout=self._timeout)]
        limits = httpx.Limits(
            max_connections=self._per_pool, max_keepalive_connections=self._per_pool
        )
        return [
            httpx.AsyncClient(limits=limits, timeout=self._timeout, verify=context)
            for _ in range(self._count)
        ]

    async def aclose(self) -> None:
        """Close every client; the next lease opens them again."""
        clients, self._clients = self._clients, []
        for client in clients:
            await client.aclose()


async def open_client(*, read_timeout: float, max_connections: int = 64) -> httpx.AsyncClient:
    """An httpx client on the aiohttp wire (a third of httpcore's CPU per download), for
    downloads outside the upstream; redirects are never followed."""

    def build() -> httpx.AsyncClient:
        from bot.upstream.transport import AiohttpTransport

        context = httpx.create_ssl_context()
        transport = AiohttpTransport(max_connections=max_connections, ssl_context=context)
        return httpx.AsyncClient(transport=transport, timeout=read_timeout, follow_redirects=False)

    return await asyncio.to_thread(build)
