"""What the engine does as one process among others: the leases it holds, how it stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from bot.engine.inflight import InFlight
from bot.engine.leases import Leases
from bot.engine.turns import INTERRUPTED
from bot.models import ThreadKey, Turn
from storage.base import Store

logger = logging.getLogger(__name__)


class EngineProcess:
    """Recovery of dead processes' jobs, claims, named leases, adoption and draining."""

    _store: Store
    _leases: Leases
    _inflight: InFlight

    async def recover(self, *, platforms: Iterable[str]) -> list[tuple[Turn, ThreadKey]]:
        """Fail the turns on these platforms whose process stopped holding them (it died),
        and hand them back for their users; each such turn comes back from one call only."""
        interrupted = await self._store.fail_expired(error=INTERRUPTED, platforms=tuple(platforms))
        if interrupted:
            logger.warning("marked %d interrupted turns failed", len(interrupted))
        return interrupted

    def answering(
        self, *, platform: str, event_ids: Sequence[str]
    ) -> contextlib.AbstractAsyncContextManager[bool]:
        """Claim an event's ids while it is answered; False: a repeat, so do nothing."""
        return self._leases.answering(platform=platform, event_ids=event_ids)

    async def hold_lease(self, name: str) -> bool:
        """Take or keep a named lease for a lease period; False: another process holds it."""
        return await self._leases.hold(name)

    async def release_lease(self, name: str) -> None:
        """Give up a named lease this process holds, so another may take it at once."""
        await self._leases.let_go(name)

    # -- shutdown ---------------------------------------------------------------------

    def adopt(self, task: asyncio.Task[Any]) -> bool:
        """Count a task as a job already: an adapter's work for an event it acknowledged,
        which a shutdown then lets in and waits for; False once shutting down."""
        return self._inflight.adopt(task)

    def stop_accepting(self) -> None:
        """Refuse new jobs with ShuttingDown; the ones already accepted (or adopted) carry on,
        through the queue as well: the gate stays open to them."""
        self._inflight.close()

    async def drain(self, *, grace: float) -> int:
        """Stop accepting, let accepted jobs end within grace seconds, cancel the rest (failed)."""
        self.stop_accepting()
        return await self._inflight.drain(grace=grace)
