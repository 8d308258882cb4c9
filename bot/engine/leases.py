"""What one process holds in a store that others share: its id, and the leases it renews.

A pending turn, an event claim and a thread's turn in progress are each held under this
process's instance id until a lease runs out. While the process holds anything, a keeper
renews every lease each third of a lease period, so only a process that stopped (killed,
frozen, cut off from the database) loses them, and another takes over once they run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from bot.errors import BotError

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
WAIT_FIRST = 0.02
WAIT_MOST = 1.0


def instance_id() -> str:
    """A name for this process, unique among all that ever share a store."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaseStore(Protocol):
    """The part of the store that holds leases and claims."""

    async def renew(self, *, owner: str, lease: float) -> int: ...

    async def acquire_lease(self, name: str, *, owner: str, lease: float) -> bool: ...

    async def release_lease(self, name: str, *, owner: str) -> None: ...

    async def claim_event(
        self, *, platform: str, event_id: str, owner: str, lease: float
    ) -> bool: ...

    async def settle_claims(
        self, *, platform: str, event_ids: Sequence[str], owner: str
    ) -> None: ...

    async def release_claims(
        self, *, platform: str, event_ids: Sequence[str], owner: str
    ) -> None: ...


class Leases:
    """This process's holdings in the store, renewed while any work is in progress."""

    def __init__(self, store: LeaseStore, *, owner: str, lease: float = LEASE_SECONDS) -> None:
        self._store = store
        self.owner = owner
        self.lease = lease
        self._holders = 0
        self._keeper: asyncio.Task[None] | None = None
        self._recorded: set[tuple[str, str]] = set()  # settled with a turn already

    @contextlib.asynccontextmanager
    async def holding(self) -> AsyncIterator[None]:
        """Keep this process's leases renewed for as long as the block runs."""
        self._holders += 1
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep(), name="lease keeper")
        try:
            yield
        finally:
            self._holders -= 1
            if not self._holders and self._keeper is not None:
                self._keeper.cancel()
                self._keeper = None

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self._store.renew(owner=self.owner, lease=self.lease)
            except Exception:
                # The next round tries again; only a whole lease period without one loses
                # the work to another process.
                logger.warning("could not renew the leases of %s", self.owner, exc_info=True)

    async def hold(self, name: str) -> bool:
        """Take or keep the named lease for a lease period; False: another process holds it."""
        return await self._store.acquire_lease(name, owner=self.owner, lease=self.lease)

    async def let_go(self, name: str) -> None:
        """Give up the named lease, if this process holds it."""
        await self._store.release_lease(name, owner=self.owner)

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Hold the named lease for the block, waiting while another process holds it."""
        wait = WAIT_FIRST
        while not await self.hold(name):
            await asyncio.sleep(wait)
            wait = min(WAIT_MOST, wait * 2)
        try:
            yield
        finally:
            await asyncio.shield(self.let_go(name))

    @contextlib.asynccontextmanager
    async def answering(self, *, platform: str, event_ids: Sequence[str]) -> AsyncIterator[bool]:
        """Claim an event's ids while it is answered: False (do nothing) for a repeat.

        The claims are settled when the block ends, so later deliveries are repeats, unless
        the event could not be recorded (an unexpected error, a cancellation): then they are
        released, and the platform's next delivery is answered.
        """
        async with self.holding():
            taken: list[str] = []
            for event_id in event_ids:
                if not await self._store.claim_event(
                    platform=platform, event_id=event_id, owner=self.owner, lease=self.lease
                ):
                    await self._let_go(platform, taken)
                    yield False
                    return
                taken.append(event_id)
            try:
                yield True
            except BotError:
                await self._settle(platform, taken)
                raise
            except BaseException:
                await self._let_go(platform, taken)
                raise
            await self._settle(platform, taken)

    def recorded(self, *, platform: str, event_ids: Sequence[str]) -> None:
        """These claims were settled with their turn: the end of answering need not again."""
        self._recorded.update((platform, event_id) for event_id in event_ids)

    async def release(self, *, platform: str, event_ids: Sequence[str]) -> None:
        """Let the next delivery of these events be answered (they could not be recorded)."""
        await self._let_go(platform, list(event_ids))

    async def _settle(self, platform: str, event_ids: list[str]) -> None:
        unsettled = [e for e in event_ids if (platform, e) not in self._recorded]
        self._recorded.difference_update((platform, e) for e in event_ids)
        if unsettled:
            await self._store.settle_claims(
                platform=platform, event_ids=unsettled, owner=self.owner
            )

    async def _let_go(self, platform: str, event_ids: list[str]) -> None:
        self._recorded.difference_update((platform, e) for e in event_ids)
        if not event_ids:
            return
        try:
            await asyncio.shield(
                self._store.release_claims(platform=platform, event_ids=event_ids, owner=self.owner)
            )
        except Exception:
            # Left held, the claims run out with their lease and the retry is answered then.
            logger.warning("could not release claims %s", event_ids, exc_info=True)
