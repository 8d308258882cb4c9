"""Queue-position notices, throttled: at most one edit per interval per message."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord

from adapters.common import Clock, QueueThrottle

logger = logging.getLogger(__name__)


def queue_text(position: int) -> str:
    if position > 0:
        return f"You are #{position} in line. Your image starts as soon as a slot is free."
    return "Making your image now…"


class QueueNotice:
    """Shows the latest place in line; a change within the interval waits, then shows the newest."""

    def __init__(
        self, show: Callable[[str], Awaitable[None]], *, interval: float, clock: Clock
    ) -> None:
        self._show_text = show
        self._throttle = QueueThrottle(self._show, interval=interval, clock=clock)

    @property
    def shown(self) -> bool:
        return self._throttle.shown

    async def __call__(self, position: int) -> None:
        """The engine's on_queued callback: 1.. while waiting, then 0 when the job starts."""
        if position == 0 and not self.shown:
            return  # never queued: the "thinking" state says enough
        await self._throttle.offer(position)

    async def close(self) -> None:
        """No more edits: the result (or an error) takes the message over."""
        await self._throttle.close()

    async def _show(self, position: int) -> None:
        try:
            await self._show_text(queue_text(position))
        except discord.HTTPException as exc:
            logger.warning("could not show the queue position: %s", exc)
