"""A WebServer on 127.0.0.1:0 and raw sockets to talk to it the way hostile clients do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from bot.ops import Health, Metrics, Phase, WebServer

Socket = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def answers() -> bool:
    return True


class FakeClock:
    """A monotonic clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def started(
    health: Health | None = None,
    *,
    metrics: Metrics | None = None,
    mount: Callable[[web.Application], None] | None = None,
    **keywords: Any,
) -> AsyncIterator[WebServer]:
    """A started WebServer (serving phase) with the given keywords; stopped on exit."""
    health = health or Health(answers)
    health.phase = Phase.SERVING
    server = WebServer(
        health=health,
        metrics=metrics or Metrics(CollectorRegistry()),
        host="127.0.0.1",
        port=0,
        **keywords,
    )
    if mount is not None:
        mount(server.app)
    beating = asyncio.create_task(health.heartbeat())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        beating.cancel()


def port_of(server: WebServer) -> int:
    assert server.port is not None
    return server.port


async def request(port: int, raw: bytes, *, within: float = 5.0) -> tuple[int, bytes]:
    """Send one raw request on a new connection; (status, body) once the server closes it."""
    async with asyncio.timeout(within):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(raw)
            answer = await reader.read()
        finally:
            writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def get(port: int, path: str, *, within: float = 5.0) -> tuple[int, str]:
    """GET path with Connection: close; (status, body text)."""
    raw = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    status, body = await request(port, raw, within=within)
    return status, body.decode()


async def open_sockets(port: int, count: int, send: bytes = b"") -> list[Socket]:
    """Connections opened one after another (a burst would overflow the accept queue)."""
    sockets: list[Socket] = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if send:
            writer.write(send)
        sockets.append((reader, writer))
    return sockets


async def closed_at(reader: asyncio.StreamReader, *, within: float) -> float:
    """The loop time at which the server closed the connection (EOF or reset)."""
    async with asyncio.timeout(within):
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
    return asyncio.get_running_loop().time()


def close_all(sockets: list[Socket]) -> None:
    for _, writer in sockets:
        writer.close()
