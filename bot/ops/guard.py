"""The HTTP server's defences: a connection cap, a header deadline, accept errors logged once."""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import resource
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
# What asyncio's accept loop reports when the process is out of descriptors or buffers.
ACCEPT_MESSAGE = "socket.accept() out of system resource"
_OUT_OF_RESOURCE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def connection_cap() -> int:
    """A quarter of the open-file limit: the rest stays for the store, upstream and gateways."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1024
    return max(8, min(1024, soft // 4))


class Throttle:
    """Lets one event through per interval and counts the ones it held back."""

    def __init__(self, interval: float, *, clock: Clock = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._next = -math.inf
        self._held = 0

    def due(self) -> int:
        """0 while quiet; else how many events (this one included) the report covers."""
        now = self._clock()
        if now < self._next:
            self._held += 1
            return 0
        count, self._held, self._next = self._held + 1, 0, now + self._interval
        return count

    def flush(self) -> int:
        """How many events were held back since the last report; starts the count afresh."""
        held, self._held = self._held, 0
        return held


class AcceptErrors:
    """A loop exception handler that logs accept failures once per interval, with a count."""

    def __init__(self, *, interval: float = 10.0, clock: Clock = time.monotonic) -> None:
        self._interval = interval
        self._throttle = Throttle(interval, clock=clock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Handle accept errors on this loop; everything else goes where it went before."""
        self._loop, self._previous = loop, loop.get_exception_handler()
        loop.set_exception_handler(self._handle)

    def uninstall(self) -> None:
        """Put the loop's previous handler back, unless another replaced this one since."""
        loop, self._loop = self._loop, None
        if loop is not None and loop.get_exception_handler() == self._handle:
            loop.set_exception_handler(self._previous)
        held = self._throttle.flush()
        if held:
            logger.error("http: accepting a connection failed %d more time(s) since then", held)

    def _handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not _is_accept_error(context):
            if self._previous is not None:
                self._previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        count = self._throttle.due()
        if count:
            # The loop pauses accepting for a second and retries on its own; no traceback helps.
            logger.error(
                "http: accepting a connection failed %d time(s) (%s); logged at most once per %g s",
                count,
                context.get("exception"),
                self._interval,
            )


def _is_accept_error(context: dict[str, Any]) -> bool:
    message = str(context.get("message", ""))
    if message.startswith(ACCEPT_MESSAGE):
        return True
    exc = context.get("exception")
    return "accept" in message and isinstance(exc, OSError) and exc.errno in _OUT_OF_RESOURCE


class _Connection:
    __slots__ = ("busy", "deadline", "transport")

    def __init__(self, transport: asyncio.Transport, deadline: asyncio.TimerHandle) -> None:
        self.transport = transport
        self.deadline: asyncio.TimerHandle | None = deadline
        self.busy = False

    def idle(self) -> bool:
        if self.busy:
            return False
        # A response still leaving the buffer is work in progress, not an idle client.
        return self.transport.get_write_buffer_size() == 0


class ConnectionGuard:
    """Caps open connections (the idlest makes way) and drops those slow to send headers."""

    def __init__(
        self,
        *,
        max_connections: int,
        header_timeout: float,
        log_interval: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.max_connections = max_connections
        self._header_timeout = header_timeout
        # Oldest-idle first: the order of arrival, a connection moves to the end after a request.
        self._open: OrderedDict[asyncio.Transport, _Connection] = OrderedDict()
        self._throttle = Throttle(log_interval, clock=clock)
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0

    @property
    def open(self) -> int:
        """Connections admitted and not yet closed."""
        return len(self._open)

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for loop.create_server that admits through this guard."""
        return lambda: _Guarded(self, factory)

    def admit(self, transport: asyncio.Transport) -> bool:
        """Take a new connection, making room by closing the idlest one; False when all work."""
        if len(self._open) >= self.max_connections and not self._make_room():
            self.refused += 1
            self._report()
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.call_later(self._header_timeout, self._expire, transport)
        self._open[transport] = _Connection(transport, deadline)
        return True

    def release(self, transport: asyncio.Transport) -> None:
        """Forget a closed connection."""
        connection = self._open.pop(transport, None)
        if connection is not None and connection.deadline is not None:
            connection.deadline.cancel()

    def headers_received(self, transport: asyncio.Transport | None) -> None:
        """A request arrived whole: its connection is no longer held to the header deadline."""
        connection = self._open.get(transport) if transport is not None else None
        if connection is not None and connection.deadline is not None:
            connection.deadline.cancel()
            connection.deadline = None

    @contextmanager
    def busy(self, transport: asyncio.Transport | None) -> Iterator[None]:
        """While a handler runs, its connection is never the one that makes way."""
        connection = self._open.get(transport) if transport is not None else None
        if connection is None:
            yield
            return
        connection.busy = True
        try:
            yield
        finally:
            connection.busy = False
            if connection.transport in self._open:
                self._open.move_to_end(connection.transport)

    def _make_room(self) -> bool:
        victim = next((c for c in self._open.values() if c.idle()), None)
        if victim is None:
            return False
        self.release(victim.transport)
        victim.transport.abort()
        self.evicted += 1
        self._report()
        return True

    def _expire(self, transport: asyncio.Transport) -> None:
        connection = self._open.get(transport)
        if connection is not None and connection.deadline is not None:
            self.timed_out += 1
            self.release(transport)
            transport.abort()

    def final_report(self) -> None:
        """At shutdown: the counts the interval held back, if any."""
        if self._throttle.flush():
            self._log_cap()

    def _report(self) -> None:
        if self._throttle.due():
            self._log_cap()

    def _log_cap(self) -> None:
        logger.warning(
            "http: at the cap of %d connections: %d idle dropped, %d refused so far",
            self.max_connections,
            self.evicted,
            self.refused,
        )


class _Guarded(asyncio.Protocol):
    """Stands between the loop and aiohttp's protocol so the guard sees each connection."""

    def __init__(self, guard: ConnectionGuard, factory: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        self._factory = factory
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # create_server hands stream protocols a socket transport.
        transport = cast(asyncio.Transport, transport)
        if not self._guard.admit(transport):
            transport.abort()
            return
        self._transport = transport
        # Created only once admitted, so a refused connection costs aiohttp nothing.
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard.release(self._transport)
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.connection_lost(exc)
