"""Helpers for the wire tests: the transport each wire sends through, and a raw misbehaving server.

The gptproto fake speaks correct HTTP through aiohttp's server; the faults a transport must map
(a body cut short, a status line that is not HTTP, an answer that never comes) need a server
that writes its bytes by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterator
from types import TracebackType

import httpx

from bot.upstream.pools import Wire
from bot.upstream.transport import AiohttpTransport

PATH = "/v1beta/models/gemini-2.5-flash-image:generateContent"


def wire_transport(wire: Wire, *, max_connections: int = 4) -> httpx.AsyncBaseTransport:
    """The transport a client on this wire sends through, for tests that wrap or drive it."""
    if wire == "aiohttp":
        context = ssl.create_default_context()
        return AiohttpTransport(max_connections=max_connections, ssl_context=context)
    return httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=max_connections))


def head(status: str = "200 OK", *headers: str) -> bytes:
    """A status line and headers, up to the blank line."""
    return "\r\n".join((f"HTTP/1.1 {status}", *headers, "", "")).encode()


def complete(body: bytes = b"{}") -> bytes:
    """A whole keep-alive 200 answer."""
    return head("200 OK", "Content-Type: application/json", f"Content-Length: {len(body)}") + body


class RawServer:
    """A server on 127.0.0.1 that reads each request, writes `answer`, then hangs or hangs up.

    hold: after the answer, wait until `release` is set (an answer that never finishes);
    close: then hang up (a connection dropped, mid-body if the answer promised more);
    read_body=False: answer (and hang up) after the head, while the client is still writing.
    """

    def __init__(
        self,
        answer: bytes = b"",
        *,
        hold: bool = False,
        close: bool = False,
        read_body: bool = True,
    ) -> None:
        self.answer, self.hold, self.close = answer, hold, close
        self.read_body = read_body
        self.requests: list[bytes] = []  # each request's head, as it arrived
        self.received = asyncio.Event()  # set on every request
        self.release = asyncio.Event()
        self.hung_up = asyncio.Event()  # a client closed a connection it had kept open
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release.set()
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        with contextlib.suppress(ConnectionError):
            while await self._read_request(reader):
                writer.write(self.answer)
                await writer.drain()
                if self.hold:
                    await self.release.wait()
                if self.close:
                    break
            else:
                self.hung_up.set()
        writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> bool:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        for line in request.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and self.read_body:
                await reader.readexactly(int(value))
        self.requests.append(request)
        self.received.set()
        return True


async def first_request(server: RawServer) -> None:
    """Wait, with a deadline, for the server to have read a request."""
    async with asyncio.timeout(5):
        await server.received.wait()


def refused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full: on Linux a connect to it neither succeeds nor fails."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            yield port
        finally:
            for filler in fillers:
                filler.close()
