"""Which Discord shards this process runs: each one under a lease in the shared store.

Discord must see one gateway connection per shard, but several processes may share the
database (replicas, a standby). Each shard is the named lease `discord-shard:<count>:<id>`
(the count is in the name, so processes started with another count never mix with these).
A process connects only the shards it holds, renews them every third of a lease period,
and, in the same rounds, tries the shards it may run but does not hold: a standby takes a
shard over once its holder releases it (at stop) or stops renewing it (within a lease).
Finding its lease taken, a process disconnects that shard at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from adapters.common import Clock
from bot.engine import Engine
from bot.errors import ConfigError

logger = logging.getLogger(__name__)


def lease_name(shard: int, count: int) -> str:
    return f"discord-shard:{count}:{shard}"


class ShardHost(Protocol):
    """What connects and disconnects one shard."""

    async def open(self, shard: int) -> None: ...

    async def close(self, shard: int) -> None: ...


class ShardKeeper:
    """Holds, renews, takes over and gives up the leases of this process's shards."""

    def __init__(
        self,
        engine: Engine,
        host: ShardHost,
        *,
        count: int,
        candidates: Sequence[int],
        clock: Clock = time.monotonic,
    ) -> None:
        self._engine = engine
        self._host = host
        self.count = count
        self.candidates = tuple(sorted(candidates))
        self._clock = clock
        self._held: dict[int, float] = {}  # shard -> when its lease was last confirmed
        self._given_up: set[int] = set()  # failed for good here; another process may run them
        self._opening: dict[int, asyncio.Task[None]] = {}
        self._loop: asyncio.Task[None] | None = None
        self._chores: set[asyncio.Task[None]] = set()

    @property
    def held(self) -> tuple[int, ...]:
        return tuple(sorted(self._held))

    @property
    def waiting(self) -> tuple[int, ...]:
        """The shards this process may run but another holds (or none has taken yet)."""
        return tuple(s for s in self.candidates if s not in self._held and s not in self._given_up)

    @property
    def interval(self) -> float:
        return self._engine.lease_seconds / 3

    async def start(self) -> None:
        """Connect the shards free now (failures raise), then keep and retry in the background."""
        self._loop = asyncio.create_task(self._run(), name="discord shard leases")
        for shard in await self._take():
            await self._host.open(shard)

    async def stop(self) -> None:
        """Disconnect every shard, then release its lease so a standby takes it at once."""
        tasks = [t for t in (self._loop, *self._opening.values(), *self._chores) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop = None
        for shard in self.held:
            await self._let_go(shard)

    def ended(self, shard: int) -> None:
        """A shard's connection ended for good: let another process have it."""
        chore = asyncio.create_task(self._let_go(shard, give_up=True))
        self._chores.add(chore)
        chore.add_done_callback(self._chores.discard)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._round()
            except Exception:
                logger.warning("could not check the Discord shard leases", exc_info=True)

    async def _round(self) -> None:
        for shard in self.held:
            if not await self._still_held(shard):
                await self._drop(shard)
        for shard in await self._take():
            logger.info("took Discord shard %s of %s over: connecting it", shard, self.count)
            self._opening[shard] = asyncio.create_task(
                self._open(shard), name=f"discord shard {shard} takeover"
            )

    async def _take(self) -> list[int]:
        taken = []
        for shard in self.waiting:
            try:
                free = await self._engine.hold_lease(lease_name(shard, self.count))
            except Exception as exc:
                logger.warning("could not try the lease of Discord shard %s: %s", shard, exc)
                break  # the store is out of reach: the next round tries again
            if free:
                self._held[shard] = self._clock()
                taken.append(shard)
        return taken

    async def _still_held(self, shard: int) -> bool:
        try:
            held = await self._engine.hold_lease(lease_name(shard, self.count))
        except Exception:
            # Still ours if the lease cannot run out before the next round; after that
            # another process may take it, so this one must not be connected any more.
            safe = self._clock() + self.interval < self._held[shard] + self._engine.lease_seconds
            logger.warning(
                "could not renew the lease of Discord shard %s%s",
                shard, "" if safe else ": disconnecting it", exc_info=True,
            )  # fmt: skip
            return safe
        if held:
            self._held[shard] = self._clock()
        else:
            logger.warning(
                "another process took the lease of Discord shard %s: disconnecting it", shard
            )
        return held

    async def _open(self, shard: int) -> None:
        try:
            await self._host.open(shard)
        except ConfigError as exc:
            logger.error("could not connect Discord shard %s: %s", shard, exc.user_message)
            await self._let_go(shard, give_up=True)
        except Exception as exc:
            logger.warning("could not connect Discord shard %s (%s): retrying later", shard, exc)
            await self._let_go(shard)
        else:
            logger.info("connected Discord shard %s of %s", shard, self.count)
        finally:
            self._opening.pop(shard, None)

    async def _drop(self, shard: int) -> None:
        """Disconnect a shard whose lease is (or may be) another's; never release it."""
        opening = self._opening.pop(shard, None)
        if opening is not None and opening is not asyncio.current_task():
            opening.cancel()
            await asyncio.wait({opening})
        self._held.pop(shard, None)
        await self._host.close(shard)

    async def _let_go(self, shard: int, *, give_up: bool = False) -> None:
        await self._drop(shard)
        if give_up:
            self._given_up.add(shard)
        try:
            await asyncio.shield(self._engine.release_lease(lease_name(shard, self.count)))
        except Exception:
            # It runs out with its lease period instead, and a standby takes it then.
            logger.warning("could not release the lease of Discord shard %s", shard, exc_info=True)
