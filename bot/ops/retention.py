"""Retention: prune turns and images older than RETENTION_DAYS, in the background."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

logger = logging.getLogger(__name__)

PRUNE_INTERVAL = 3600.0


class Prunable(Protocol):
    """The part of the store retention needs."""

    async def prune(self, *, before: datetime) -> int: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Retention:
    """Deletes what is older than `days` once now and then every `interval` seconds."""

    def __init__(
        self,
        store: Prunable,
        *,
        days: int,
        interval: float = PRUNE_INTERVAL,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._days = days
        self._interval = interval
        self._clock = clock
        self._sleep = sleep

    @property
    def enabled(self) -> bool:
        """RETENTION_DAYS=0 keeps everything forever."""
        return self._days > 0

    async def prune_once(self) -> int:
        """One pass: the number of turns removed."""
        if not self.enabled:
            return 0
        cutoff = self._clock() - timedelta(days=self._days)
        removed = await self._store.prune(before=cutoff)
        logger.info("retention: removed %d turns older than %d days", removed, self._days)
        return removed

    async def run(self) -> None:
        """Prune until cancelled; a failed pass is logged and retried at the next interval."""
        if not self.enabled:
            logger.info("retention: off (RETENTION_DAYS=0), history is kept forever")
            return
        while True:
            try:
                await self.prune_once()
            except Exception:
                logger.exception("retention: pruning older than %d days failed", self._days)
            await self._sleep(self._interval)
