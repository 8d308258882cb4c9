"""What /healthz reports: the phase, the loop's heartbeat, the store, and the upstream's record."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from enum import StrEnum

logger = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[bool]]

# Attempts the upstream answered about the request itself: the service is up, even if the
# answer was no. Every other outcome (timeouts, connection errors, 5xx, 429, a refused key...)
# is the service failing.
ANSWERED = frozenset(
    {
        "ok", "http_400", "http_413", "invalid_request", "prompt_blocked", "output_blocked",
        "content_policy", "no_image", "text_only",
    }
)  # fmt: skip


class Phase(StrEnum):
    STARTING = "starting"
    SERVING = "serving"
    STOPPING = "shutting down"


class UpstreamTracker:
    """Down once at least min_failures calls failed within the window and none succeeded."""

    def __init__(
        self,
        *,
        window: float = 300.0,
        min_failures: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window = window
        self._clock = clock
        # Only the latest min_failures matter: are they all inside the window?
        self._failures: deque[float] = deque(maxlen=max(1, min_failures))
        self._last_success = -math.inf
        self._streak = 0

    def record(self, ok: bool) -> None:
        """One upstream call's outcome: answered (ok) or failed."""
        if ok:
            self._last_success, self._streak = self._clock(), 0
            self._failures.clear()
        else:
            self._failures.append(self._clock())
            self._streak += 1

    def on_attempt(self, *, seconds: float, outcome: str) -> None:
        """Read an upstream attempt as the client's observer reports it."""
        self.record(outcome in ANSWERED)

    def problem(self) -> str | None:
        """None while the upstream answers, else what it has been doing."""
        since = self._clock() - self._window
        failures = self._failures
        if self._last_success >= since or len(failures) < (failures.maxlen or 1):
            return None
        if failures[0] < since:
            return None
        return (
            f"the image service failed the last {self._streak} calls "
            f"and none succeeded in {self._window:.0f} s"
        )


class Health:
    """Healthy while serving, the loop beats, the store answers and takes writes, upstream works."""

    def __init__(
        self,
        ping: Probe,
        *,
        writable: Probe | None = None,
        upstream: UpstreamTracker | None = None,
        ping_timeout: float = 2.0,
        write_interval: float = 30.0,
        beat_interval: float = 1.0,
        max_stall: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ping = ping
        self._writable = writable
        self.upstream = upstream if upstream is not None else UpstreamTracker(clock=clock)
        self._ping_timeout = ping_timeout
        self._write_interval = write_interval
        self._beat_interval = beat_interval
        self._max_stall = max_stall
        self._clock = clock
        self._last_beat = clock()
        self._write_lock = asyncio.Lock()
        self._next_write = -math.inf
        self._write_problem: str | None = None
        self.phase = Phase.STARTING

    async def heartbeat(self) -> None:
        """Record that the loop runs; a blocked loop shows as a beat that is too old."""
        while True:
            self._last_beat = self._clock()
            await asyncio.sleep(self._beat_interval)

    def on_upstream(self, ok: bool) -> None:
        """One upstream call answered (True) or failed (False)."""
        self.upstream.record(ok)

    async def check(self) -> str | None:
        """None when healthy, else the reason in a few words."""
        if self.phase is not Phase.SERVING:
            return str(self.phase)
        stalled = self._clock() - self._last_beat
        if stalled > self._max_stall:
            return f"event loop stalled for {stalled:.0f} s"
        return await self._store_problem() or await self._write_check() or self.upstream.problem()

    async def _store_problem(self) -> str | None:
        try:
            answered = await asyncio.wait_for(self._ping(), self._ping_timeout)
        except TimeoutError:
            return f"store did not answer within {self._ping_timeout:g} s"
        except Exception:
            logger.exception("store ping failed")
            return "store ping failed"
        return None if answered else "store is not answering"

    async def _write_check(self) -> str | None:
        # A write is dearer than a ping: probed once per interval, the verdict kept in between.
        if self._writable is None:
            return None
        async with self._write_lock:
            if self._clock() >= self._next_write:
                self._write_problem = await self._probe_write(self._writable)
                self._next_write = self._clock() + self._write_interval
        return self._write_problem

    async def _probe_write(self, writable: Probe) -> str | None:
        try:
            written = await asyncio.wait_for(writable(), self._ping_timeout)
        except TimeoutError:
            return f"store did not take a write within {self._ping_timeout:g} s"
        except Exception as exc:
            logger.exception("store write probe failed")
            # The class only: an error's text may carry a path or a connection string.
            return f"store cannot be written ({type(exc).__name__})"
        return None if written else "store cannot be written"
