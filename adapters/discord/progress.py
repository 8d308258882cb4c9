"""Queue-position notices, throttled: at most one edit per interval per message."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import discord

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


def queue_text(position: int) -> str:
    if position > 0:
        return f"You are #{position} in line. Your image starts as soon as a slot is free."
    return "Making your image now…"


class QueueNotice:
    """Shows the latest place in line; a change within the interval waits, then shows the newest."""

    def __init__(
        self, show: Callable[[str], Awaitable[None]], *, interval: float, clock: Clock
    ) -> None:
        self._show = show
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._pending: str | None = None
        self._later: asyncio.Task[None] | None = None
        self._showing = False
        self._closed = False

    @property
    def shown(self) -> bool:
        return self._last is not None

    async def __call__(self, position: int) -> None:
        """The engine's on_queued callback: 1.. while waiting, then 0 when the job starts."""
        if self._closed or (position == 0 and not self.shown):
            return  # never queued: the "thinking" state says enough
        self._pending = queue_text(position)
        wait = 0.0 if self._last is None else self._last + self._interval - self._clock()
        if wait <= 0:
            await self._flush()
        elif self._later is None:
            self._later = asyncio.create_task(self._flush_after(wait))

    async def close(self) -> None:
        """No more edits: the result (or an error) takes the message over."""
        self._closed = True
        self._pending = None
        later, self._later = self._later, None
        if later is None:
            return
        if not self._showing:
            later.cancel()
        # An edit already on its way must land before the result, or it would overwrite it.
        with contextlib.suppress(asyncio.CancelledError):
            await later

    async def _flush_after(self, wait: float) -> None:
        try:
            while True:
                await asyncio.sleep(wait)
                await self._flush()
                if self._pending is None or self._closed:
                    return
                wait = self._interval  # a newer place arrived while the edit was on its way
        finally:
            if self._later is asyncio.current_task():
                self._later = None

    async def _flush(self) -> None:
        text, self._pending = self._pending, None
        if text is None or self._closed:
            return
        self._last = self._clock()
        self._showing = True
        try:
            await self._show(text)
        except discord.HTTPException as exc:
            logger.warning("could not show the queue position: %s", exc)
        finally:
            self._showing = False
