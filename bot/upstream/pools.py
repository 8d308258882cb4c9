"""Several small httpx pools used as one, opened on first use."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator

import httpx

# httpcore's pool does work quadratic in its connection count on every request event, which
# stalls the loop for seconds at hundreds of connections; small pools used together do not.
POOL_SIZE = 8


class Pools:
    """Several small httpx pools used as one, each request going to the least busy."""

    def __init__(self, *, max_connections: int, timeout: float) -> None:
        self._count = math.ceil(max_connections / POOL_SIZE)
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
            # Loading the CA bundle takes tens of milliseconds: not on the event loop.
            context = await asyncio.to_thread(httpx.create_ssl_context)
            limits = httpx.Limits(
                max_connections=self._per_pool, max_keepalive_connections=self._per_pool
            )
            self._busy = [0] * self._count
            self._clients = [
                httpx.AsyncClient(limits=limits, timeout=self._timeout, verify=context)
                for _ in range(self._count)
            ]

    async def aclose(self) -> None:
        clients, self._clients = self._clients, []
        for client in clients:
            await client.aclose()
