"""Admission: a global concurrency gate with a FIFO queue, per-user rate limits and quotas."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.errors import QueueFull, QuotaExceeded, ShuttingDown, UnsupportedOption, UserRateLimited

QueueCallback = Callable[[int], Awaitable[None]]

logger = logging.getLogger(__name__)


async def _tell(on_queued: QueueCallback | None, position: int) -> None:
    """Report a place in line; a failing report must not cost the user the job."""
    if on_queued is None:
        return
    try:
        await on_queued(position)
    except Exception:
        logger.exception("queue position report failed at position %s", position)


@dataclass(eq=False)
class _Waiter:
    granted: asyncio.Future[None]
    moved: asyncio.Event = field(default_factory=asyncio.Event)


class JobGate:
    """At most max_concurrent jobs run; up to max_queue wait in FIFO order, told their place."""

    def __init__(self, *, max_concurrent: int, max_queue: int) -> None:
        self._max_concurrent = max_concurrent
        self._max_queue = max_queue
        self._running = 0
        self._waiters: deque[_Waiter] = deque()
        self._closed = False

    @property
    def in_flight(self) -> int:
        return self._running

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def close(self) -> None:
        """Refuse new jobs from now on; queued and running ones carry on."""
        self._closed = True

    def check_room(self) -> None:
        """Raise what slot() would raise right now, without taking a place."""
        if self._closed:
            raise ShuttingDown()
        if self._running >= self._max_concurrent and len(self._waiters) >= self._max_queue:
            raise QueueFull()

    @asynccontextmanager
    async def slot(self, on_queued: QueueCallback | None = None) -> AsyncIterator[None]:
        """Hold one of the concurrent places for the duration of the block."""
        if self._closed:
            raise ShuttingDown()
        if self._running < self._max_concurrent and not self._waiters:
            self._running += 1
        else:
            await self._wait_in_line(on_queued)
        try:
            yield
        finally:
            self._release()

    async def _wait_in_line(self, on_queued: QueueCallback | None) -> None:
        if len(self._waiters) >= self._max_queue:
            raise QueueFull()
        waiter = _Waiter(asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            position = len(self._waiters)
            while not waiter.granted.done():
                await _tell(on_queued, position)
                if waiter.granted.done():
                    break
                await waiter.moved.wait()
                waiter.moved.clear()
                if waiter in self._waiters:
                    position = self._waiters.index(waiter) + 1
        except BaseException:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                self._tell_positions()
            elif waiter.granted.done():
                self._release()  # the place was handed over as we were cancelled
            raise
        await _tell(on_queued, 0)

    def _release(self) -> None:
        if self._waiters:
            waiter = self._waiters.popleft()
            waiter.granted.set_result(None)  # the place passes on; _running is unchanged
            waiter.moved.set()
            self._tell_positions()
        else:
            self._running -= 1

    def _tell_positions(self) -> None:
        for waiter in self._waiters:
            waiter.moved.set()


class JobCounter(Protocol):
    """The part of the store the limits need: jobs counted where every process counts them."""

    async def jobs_since(self, *, platform: str, user: str, since: datetime) -> int: ...

    async def first_job_since(
        self, *, platform: str, user: str, since: datetime
    ) -> datetime | None: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class UserLimits:
    """Per-user jobs per minute and per day, counted in the store, so that every process
    sharing it gives a user the same allowance between them, not one each."""

    def __init__(
        self,
        *,
        per_minute: int,
        per_day: int,
        counter: JobCounter,
        clock: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_minute = per_minute
        self._per_day = per_day
        self._counter = counter
        self._clock = clock
        self._monotonic = monotonic
        self._recent: dict[tuple[str, str], deque[float]] = {}

    async def check(self, *, platform: str, user: str, jobs: int = 1) -> None:
        """Refuse with when to try again if the user's next jobs would be refused (a request
        for several images is that many jobs); count nothing."""
        for limit, period in ((self._per_minute, "a minute"), (self._per_day, "a day")):
            if limit and jobs > limit:
                # Waiting would never help: say so rather than when to try again.
                raise UnsupportedOption(
                    f"You may make at most {limit} image{'s' if limit != 1 else ''} {period} "
                    "here; ask for fewer at a time."
                )
        self._check_rate(platform, user, jobs)
        await self._check_shared_rate(platform, user, jobs)
        await self._check_quota(platform, user, jobs)

    async def admit(self, *, platform: str, user: str, jobs: int = 1) -> None:
        """Count the jobs for the user, all or none, or refuse with when to try again."""
        await self.check(platform=platform, user=user, jobs=jobs)
        if self._per_minute:
            now = self._monotonic()
            self._recent.setdefault((platform, user), deque()).extend([now] * jobs)

    def _check_rate(self, platform: str, user: str, jobs: int) -> None:
        """The minute's jobs admitted here, counted at once: the store sees a job only once
        it starts, and several may be admitted before the first one does."""
        if not self._per_minute:
            return
        now = self._monotonic()
        recent = self._recent.get((platform, user))
        if recent is None:
            return
        while recent and now - recent[0] >= 60:
            recent.popleft()
        if not recent:
            del self._recent[(platform, user)]
        elif len(recent) + jobs > self._per_minute:
            raise UserRateLimited(retry_after=60 - (now - recent[0]))

    async def _check_shared_rate(self, platform: str, user: str, jobs: int) -> None:
        """The minute's jobs as the store counts them: this process's and every other's."""
        if not self._per_minute:
            return
        now = self._clock()
        since = now - timedelta(minutes=1)
        used = await self._counter.jobs_since(platform=platform, user=user, since=since)
        if used + jobs <= self._per_minute:
            return
        first = await self._counter.first_job_since(platform=platform, user=user, since=since)
        waited = (now - first).total_seconds() if first is not None else 0.0
        raise UserRateLimited(retry_after=max(1.0, 60 - waited))

    async def _check_quota(self, platform: str, user: str, jobs: int) -> None:
        if not self._per_day:
            return
        now = self._clock()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        used = await self._counter.jobs_since(platform=platform, user=user, since=midnight)
        if used + jobs > self._per_day:
            reset = midnight + timedelta(days=1)
            raise QuotaExceeded(limit=self._per_day, retry_after=(reset - now).total_seconds())
