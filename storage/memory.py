"""The in-memory Store: the SQLite store's semantics without a file, for fast tests and trials."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime

from bot.models import (
    Budget,
    BudgetScope,
    Image,
    PendingImages,
    Thread,
    ThreadKey,
    Turn,
    Usage,
    UsageTotals,
)
from storage import memory_ownership as ownership
from storage import memory_records as records
from storage import memory_tables as tables
from storage import memory_usage as usage_ledger
from storage.times import EVENT_RETENTION, as_utc, utc_now

logger = logging.getLogger(__name__)


class MemoryStore:
    """Store in this process's memory: kept across close and open, lost with the object."""

    def __init__(self, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self._tables = tables.Tables()
        self._open = False

    async def open(self) -> None:
        """Start answering; what was stored before a close is still there."""
        self._open = True

    async def close(self) -> None:
        """Stop answering until the next open."""
        self._open = False

    async def ping(self) -> bool:
        """True while the store answers a trivial query."""
        return self._open

    async def probe_write(self) -> bool:
        """True while the store is open: memory is never full."""
        return self._open

    async def _enter(self) -> tables.Tables:
        """The tables, once other coroutines have had the turn a real store's call gives them."""
        # Each operation then runs whole, with no await inside it: it is atomic on the loop
        # without a lock, while callers still interleave as they do on a real store.
        await asyncio.sleep(0)
        if not self._open:
            raise RuntimeError("the store is not open")
        return self._tables

    def _now(self) -> datetime:
        return as_utc(self._clock())

    # -- threads -------------------------------------------------------------------

    async def get_thread(self, key: ThreadKey) -> Thread | None:
        """The thread a key (or an alias of it) names; its `key` is the key asked."""
        return tables.thread_by_key(await self._enter(), key)

    async def create_thread(self, key: ThreadKey) -> Thread:
        """A new thread under key; returns the existing one if the key is taken."""
        return tables.create_thread(await self._enter(), key, now=self._now())

    async def thread_key(self, thread_id: int) -> ThreadKey | None:
        """The key a thread was created under."""
        return tables.first_key(await self._enter(), thread_id)

    async def add_alias(self, thread_id: int, *, key: ThreadKey) -> None:
        """Let a second key name the same thread; a key naming another thread is refused."""
        tables.add_alias(await self._enter(), thread_id, key=key)

    # -- turns ---------------------------------------------------------------------

    async def start_turn(
        self,
        thread_id: int,
        *,
        parent_id: int | None,
        user: str,
        prompt: str,
        ratio: str | None,
        model: str,
        inputs: Sequence[Image],
        owner: str,
        lease: float,
        claims: Sequence[str] = (),
        size: str | None = None,
    ) -> Turn:
        """Store a pending turn held by owner, its inputs and its settled claims at once."""
        return ownership.start_turn(
            await self._enter(), thread_id, parent_id=parent_id, user=user, prompt=prompt,
            ratio=ratio, model=model, inputs=inputs, owner=owner, lease=lease, claims=claims,
            now=self._now(), size=size,
        )  # fmt: skip

    async def finish_turn(
        self,
        turn_id: int,
        *,
        owner: str,
        outputs: Sequence[Image],
        text: str,
        usage: Usage,
        parts_json: str,
        cost_usd: float = 0.0,
        head: bool = True,
        possibly_billed: int = 0,
    ) -> Turn:
        """Mark the owner's turn done, store its outputs, add usage (under its model and size);
        with head, move the head."""
        return ownership.finish_turn(
            await self._enter(), turn_id, owner=owner, outputs=outputs, text=text, usage=usage,
            parts_json=parts_json, cost_usd=cost_usd, now=self._now(), head=head,
            possibly_billed=possibly_billed,
        )  # fmt: skip

    async def move_head(self, turn_id: int) -> None:
        """Make a done turn its thread's head."""
        tables.move_head(await self._enter(), turn_id)

    async def fail_turn(self, turn_id: int, *, error: str) -> Turn:
        """Mark a pending turn failed with the message the user saw; a finished turn is kept."""
        return tables.fail_turn(await self._enter(), turn_id, error=error)

    async def get_turn(self, turn_id: int) -> Turn | None:
        """The turn with an id, if it was not pruned."""
        row = (await self._enter()).turns.get(turn_id)
        return None if row is None else row.turn

    async def lineage(self, turn_id: int, *, limit: int) -> list[Turn]:
        """The turn and up to limit-1 of its done ancestors, oldest first."""
        return tables.ancestry(await self._enter(), turn_id, limit=limit)

    async def load_images(self, hashes: Sequence[str]) -> list[Image]:
        """Image bytes by content hash, in the order asked; missing hashes are skipped."""
        return tables.load_images(await self._enter(), hashes)

    async def fail_expired(
        self, *, error: str, platforms: Sequence[str]
    ) -> list[tuple[Turn, ThreadKey]]:
        """Mark failed the pending turns of these platforms whose lease ran out; return them."""
        failed = ownership.fail_expired(
            await self._enter(), error=error, platforms=platforms, now=self._now()
        )
        if failed:
            logger.info("marked %s turns whose lease ran out as failed", len(failed))
        return failed

    # -- ownership -----------------------------------------------------------------

    async def renew(self, *, owner: str, lease: float) -> int:
        """Extend everything owner holds by lease seconds from now."""
        return ownership.renew(await self._enter(), owner=owner, lease=lease, now=self._now())

    async def acquire_lease(self, name: str, *, owner: str, lease: float) -> bool:
        """True when owner holds the named lease (free, run out, or held already)."""
        return ownership.acquire_lease(
            await self._enter(), name, owner=owner, lease=lease, now=self._now()
        )

    async def release_lease(self, name: str, *, owner: str) -> None:
        ownership.release_lease(await self._enter(), name, owner=owner)

    # -- platform messages ---------------------------------------------------------

    async def link_message(self, turn_id: int, *, platform: str, message_id: str) -> None:
        """Remember which platform message shows a turn's result."""
        records.link_message(await self._enter(), turn_id, platform=platform, message_id=message_id)

    async def turn_for_message(self, *, platform: str, message_id: str) -> Turn | None:
        """The turn whose result a platform message shows."""
        return records.turn_for_message(
            await self._enter(), platform=platform, message_id=message_id
        )

    async def message_for_turn(self, turn_id: int, *, platform: str) -> str | None:
        """The platform message showing a turn's result (the smallest id, if several)."""
        return records.message_for_turn(await self._enter(), turn_id, platform=platform)

    # -- dedupe --------------------------------------------------------------------

    async def claim_event(self, *, platform: str, event_id: str, owner: str, lease: float) -> bool:
        """True when owner now holds the event id (first delivery, or its holder died)."""
        return ownership.claim_event(
            await self._enter(), platform=platform, event_id=event_id, owner=owner,
            lease=lease, now=self._now(),
        )  # fmt: skip

    async def settle_claims(self, *, platform: str, event_ids: Sequence[str], owner: str) -> None:
        """The owner has answered these events."""
        ownership.settle_claims(
            await self._enter(), platform=platform, event_ids=event_ids, owner=owner
        )

    async def release_claims(self, *, platform: str, event_ids: Sequence[str], owner: str) -> None:
        """The owner could not record these events: their next delivery is handled."""
        ownership.release_claims(
            await self._enter(), platform=platform, event_ids=event_ids, owner=owner
        )

    # -- usage ---------------------------------------------------------------------

    async def jobs_since(self, *, platform: str, user: str, since: datetime) -> int:
        """Turns a user started since a moment, not counting failed ones."""
        return records.jobs_since(await self._enter(), platform=platform, user=user, since=since)

    async def first_job_since(
        self, *, platform: str, user: str, since: datetime
    ) -> datetime | None:
        """When the first of those turns started."""
        return records.first_job_since(
            await self._enter(), platform=platform, user=user, since=since
        )

    async def usage_totals(
        self,
        *,
        platform: str,
        workspace: str | None = None,
        user: str | None = None,
        since: date,
    ) -> UsageTotals:
        """Sums from the ledger for a user and/or a workspace since a day (inclusive), with
        the cost split by model and size."""
        return usage_ledger.usage_totals(
            await self._enter(), platform=platform, workspace=workspace, user=user, since=since
        )

    async def pending_images(
        self, *, platform: str, workspace: str | None = None, user: str | None = None
    ) -> list[PendingImages]:
        """The images pending turns of a user and/or a workspace are making, by model and size."""
        return usage_ledger.pending_images(
            await self._enter(), platform=platform, workspace=workspace, user=user
        )

    async def record_possibly_billed(
        self, *, platform: str, workspace: str, user: str, calls: int
    ) -> None:
        """Count upstream calls that may have been billed for a job that then failed."""
        usage_ledger.record_possibly_billed(
            await self._enter(), platform=platform, workspace=workspace, user=user, calls=calls,
            now=self._now(),
        )  # fmt: skip

    # -- budgets -------------------------------------------------------------------

    async def set_budget(
        self,
        *,
        platform: str,
        workspace: str,
        scope: BudgetScope,
        subject: str,
        monthly_usd: float | None,
    ) -> None:
        """Set a monthly cost budget (None removes it)."""
        usage_ledger.set_budget(
            await self._enter(), platform=platform, workspace=workspace, scope=scope,
            subject=subject, monthly_usd=monthly_usd,
        )  # fmt: skip

    async def budgets(self, *, platform: str, workspace: str) -> list[Budget]:
        """The budgets set in a workspace, by scope (user, role, workspace) then subject."""
        return usage_ledger.budgets(await self._enter(), platform=platform, workspace=workspace)

    # -- retention -----------------------------------------------------------------

    async def prune(self, *, before: datetime) -> int:
        """Delete turns older than a moment and images no turn refers to; returns turns removed."""
        held = await self._enter()
        removed = records.prune(held, before=before)
        records.forget_events(held, before=self._now() - EVENT_RETENTION)
        if removed:
            logger.info("pruned %s turns created before %s", removed, before.isoformat())
        return removed
