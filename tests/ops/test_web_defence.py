"""The HTTP server against slow, idle, crowding and oversized clients, over raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import tracemalloc
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from tests.ops.raw import (
    close_all,
    closed_at,
    get,
    open_sockets,
    port_of,
    request,
    started,
)
from tests.support.service import until

MiB = 1024 * 1024


async def _trickle(writer: asyncio.StreamWriter, byte: bytes, every: float) -> None:
    # The attacker's pace, not a synchronisation: a byte at a time, until the server hangs up.
    with contextlib.suppress(ConnectionError):
        while not writer.is_closing():
            writer.write(byte)
            await writer.drain()
            await asyncio.sleep(every)


async def _held_while_trickling(port: int, start: bytes, byte: bytes) -> float:
    """Seconds the server keeps a client that sends `start`, then a byte every 20 ms."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    began = asyncio.get_running_loop().time()
    writer.write(start)
    trickle = asyncio.create_task(_trickle(writer, byte, 0.02))
    try:
        return await closed_at(reader, within=5) - began
    finally:
        trickle.cancel()
        writer.close()


async def test_half_sent_request_lines_are_dropped_at_the_header_timeout_while_health_answers() -> (
    None
):
    async with started(header_timeout=0.5, max_connections=200) as server:
        port, loop = port_of(server), asyncio.get_running_loop()
        began = loop.time()
        idle = await open_sockets(port, 50, b"GET /hea")
        await until(lambda: server.guard.open >= 50)
        assert await get(port, "/healthz") == (200, "ok")
        assert server.guard.timed_out == 0  # answered while all 50 were still held open
        closed = await asyncio.gather(*(closed_at(reader, within=5) for reader, _ in idle))
        close_all(idle)
    assert server.guard.timed_out == 50
    assert all(0.45 <= at - began < 2.0 for at in closed), [at - began for at in closed]


async def test_headers_trickled_a_byte_at_a_time_are_dropped_all_the_same() -> None:
    async with started(header_timeout=0.4) as server:
        held = await _held_while_trickling(port_of(server), b"GET /", b"a")
    assert 0.35 <= held < 2.0
    assert server.guard.timed_out == 1


def _mount_events(handled: list[bytes]) -> Callable[[web.Application], None]:
    def mount(app: web.Application) -> None:
        async def events(request: web.Request) -> web.Response:
            handled.append(await request.read())
            return web.Response(text="taken")

        app.router.add_post("/slack/events", events)

    return mount


async def test_a_body_sent_slowly_is_dropped_at_the_body_timeout() -> None:
    handled: list[bytes] = []
    mount = _mount_events(handled)
    async with started(mount=mount, header_timeout=0.2, body_timeout=0.6) as server:
        port = port_of(server)
        start = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
        held = await _held_while_trickling(port, start, b"{")
        body = b'{"type": "url_verification"}'
        head = f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        assert await request(port, head.encode() + b"Connection: close\r\n\r\n" + body) == (
            200,
            b"taken",
        )
    # Past the header timeout (the headers came at once) and dropped at the body timeout.
    assert 0.55 <= held < 2.0
    assert handled == [body]


async def test_over_the_cap_idle_connections_make_way_for_a_real_request() -> None:
    async with started(max_connections=20, header_timeout=30) as server:
        port = port_of(server)
        idle = await open_sockets(port, 100)
        await until(lambda: server.guard.evicted >= 80)
        most_open = server.guard.open
        assert await get(port, "/healthz", within=2) == (200, "ok")
        closed = await asyncio.gather(
            *(closed_at(reader, within=0.5) for reader, _ in idle), return_exceptions=True
        )
        dropped = sum(not isinstance(at, BaseException) for at in closed)
        close_all(idle)
    assert most_open <= 20
    assert dropped >= 81  # the first 80 made way for the last 20, one more for /healthz
    assert server.guard.timed_out == 0  # room was made at once, not by waiting out a timeout


async def _post(
    port: int, head: bytes, chunks: int, chunk: bytes, end: bytes = b""
) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        with contextlib.suppress(ConnectionError):
            for _ in range(chunks):
                writer.write(chunk)
                await writer.drain()
            writer.write(end)
        answer = await asyncio.wait_for(reader.read(), 15)
    finally:
        writer.close()
    status_line = answer.split(b"\r\n", 1)[0]
    return int(status_line.split(b" ")[1]), answer


async def _peak_while(work: Coroutine[Any, Any, tuple[int, bytes]]) -> tuple[int, int, int]:
    gc.collect()
    tracemalloc.start()
    try:
        status, _ = await work
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return status, peak, current


async def test_a_two_mib_post_gets_413_and_memory_does_not_grow_with_the_body() -> None:
    handled: list[bytes] = []
    async with started(mount=_mount_events(handled)) as server:
        port, chunk = port_of(server), b"x" * 65536
        frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        head = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        for mib in (2, 8):
            sized = head + b"Content-Length: %d\r\n\r\n" % (mib * MiB)
            status, peak, current = await _peak_while(_post(port, sized, mib * 16, chunk))
            # Refused on its length: what passes through is read in pieces and let go.
            assert status == 413 and peak < 2 * MiB and current < MiB // 8, (mib, peak, current)
            chunked = head + b"Transfer-Encoding: chunked\r\n\r\n"
            status, peak, current = await _peak_while(
                _post(port, chunked, mib * 16, frame, b"0\r\n\r\n")
            )
            # Without a length the body is read up to the 1 MiB cap, then let go.
            assert status == 413 and peak < 4 * MiB and current < MiB // 8, (mib, peak, current)
        assert await get(port, "/healthz") == (200, "ok")
    assert handled == []


async def _answer(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    return head + await reader.readexactly(length)


async def test_a_kept_alive_connection_is_closed_after_the_keepalive_timeout() -> None:
    # Also proves the handler keywords reach aiohttp's protocol: it drops unknown ones silently.
    async with started(keepalive_timeout=0.4, header_timeout=5) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await _answer(reader)
        answered = asyncio.get_running_loop().time()
        held = await closed_at(reader, within=5) - answered
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\nok")
    assert 0.35 <= held < 2.0
    assert server.guard.timed_out == 0  # aiohttp's keep-alive timer closed it, not the guard


async def test_at_the_cap_a_connection_mid_request_is_never_the_one_dropped() -> None:
    release, entered = asyncio.Event(), asyncio.Event()

    def mount(app: web.Application) -> None:
        async def slow(_: web.Request) -> web.Response:
            entered.set()
            await release.wait()
            return web.Response(text="done")

        app.router.add_get("/slow", slow)

    async with started(mount=mount, max_connections=1, header_timeout=5) as server:
        port = port_of(server)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(entered.wait(), 5)
        (refused,) = await open_sockets(port, 1)
        await closed_at(refused[0], within=5)
        assert (server.guard.refused, server.guard.evicted) == (1, 0)
        release.set()
        answer = await _answer(reader)
        writer.close()
        refused[1].close()
    assert answer.endswith(b"\r\n\r\ndone")
