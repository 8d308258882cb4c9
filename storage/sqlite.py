"""The embedded Store: one SQLite file in WAL mode, each connection on a thread of its own."""

from __future__ import annotations

import logging
from collections.abc import Sequence
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
from storage import sqlite_ownership as ownership
from storage import sqlite_queries as queries
from storage import sqlite_records as records
from storage import sqlite_usage as usage_ledger
from storage.sqlite_file import MIN_FREE_BYTES, SqliteFile, free_bytes
from storage.times import EVENT_RETENTION

__all__ = ["MIN_FREE_BYTES", "PRUNE_BATCH", "SqliteStore", "free_bytes"]

logger = logging.getLogger(__name__)

PRUNE_BATCH = 500
"""Turns deleted per write transaction by prune(), so other writes wait only briefly."""


class SqliteStore(SqliteFile):
    """Store on one SQLite file: threads, a tree of turns, images once per hash, usage."""

    # -- threads -------------------------------------------------------------------

    async def get_thread(self, key: ThreadKey) -> Thread | None:
        """The thread a key (or an alias of it) names; its `key` is the key asked."""
        return await self._read(queries.thread_by_key, key)

    async def create_thread(self, key: ThreadKey) -> Thread:
        """A new thread under key; returns the existing one if the key is taken."""
        return await self._write(queries.create_thread, key, now=self._now())

    async def thread_key(self, thread_id: int) -> ThreadKey | None:
        """The key a thread was created under."""
        return (await self._read(queries.first_keys, [thread_id])).get(thread_id)

    async def add_alias(self, thread_id: int, *, key: ThreadKey) -> None:
        """Let a second key name the same thread; a key naming another thread is refused."""
        await self._write(queries.add_alias, thread_id, key=key)

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
        return await self._write(
            ownership.start_turn, thread_id, parent_id=parent_id, user=user, prompt=prompt,
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
        return await self._write(
            ownership.finish_turn, turn_id, owner=owner, outputs=outputs, text=text, usage=usage,
            parts_json=parts_json, cost_usd=cost_usd, now=self._now(), head=head,
            possibly_billed=possibly_billed,
        )  # fmt: skip

    async def move_head(self, turn_id: int) -> None:
        """Make a done turn its thread's head."""
        await self._write(queries.move_head, turn_id)

    async def fail_turn(self, turn_id: int, *, error: str) -> Turn:
        """Mark a pending turn failed with the message the user saw; a finished turn is kept."""
        return await self._write(queries.fail_turn, turn_id, error=error, now=self._now())

    async def get_turn(self, turn_id: int) -> Turn | None:
        return await self._read(queries.turn, turn_id)

    async def lineage(self, turn_id: int, *, limit: int) -> list[Turn]:
        """The turn and up to limit-1 of its done ancestors, oldest first."""
        if limit < 1:
            return []
        return await self._read(queries.ancestry, turn_id, limit=limit)

    async def load_images(self, hashes: Sequence[str]) -> list[Image]:
        """Image bytes by content hash, in the order asked; missing hashes are skipped."""
        return await self._read(queries.load_images, hashes)

    async def fail_expired(
        self, *, error: str, platforms: Sequence[str]
    ) -> list[tuple[Turn, ThreadKey]]:
        """Mark failed the pending turns of these platforms whose lease ran out; return them."""
        failed = await self._write(
            ownership.fail_expired, error=error, platforms=platforms, now=self._now()
        )
        if failed:
            logger.info("marked %s turns whose lease ran out as failed", len(failed))
        return failed

    # -- ownership -----------------------------------------------------------------

    async def renew(self, *, owner: str, lease: float) -> int:
        """Extend everything owner holds by lease seconds from now."""
        return await self._write(ownership.renew, owner=owner, lease=lease, now=self._now())

    async def acquire_lease(self, name: str, *, owner: str, lease: float) -> bool:
        """True when owner holds the named lease (free, run out, or held already)."""
        return await self._write(
            ownership.acquire_lease, name, owner=owner, lease=lease, now=self._now()
        )

    async def release_lease(self, name: str, *, owner: str) -> None:
        await self._write(ownership.release_lease, name, owner=owner)

    # -- platform messages ---------------------------------------------------------

    async def link_message(self, turn_id: int, *, platform: str, message_id: str) -> None:
        """Remember which platform message shows a turn's result."""
        await self._write(records.link_message, turn_id, platform=platform, message_id=message_id)

    async def turn_for_message(self, *, platform: str, message_id: str) -> Turn | None:
        return await self._read(records.turn_for_message, platform=platform, message_id=message_id)

    async def message_for_turn(self, turn_id: int, *, platform: str) -> str | None:
        return await self._read(records.message_for_turn, turn_id, platform=platform)

    # -- dedupe --------------------------------------------------------------------

    async def claim_event(self, *, platform: str, event_id: str, owner: str, lease: float) -> bool:
        """True when owner now holds the event id (first delivery, or its holder died)."""
        return await self._write(
            ownership.claim_event, platform=platform, event_id=event_id, owner=owner,
            lease=lease, now=self._now(),
        )  # fmt: skip

    async def settle_claims(self, *, platform: str, event_ids: Sequence[str], owner: str) -> None:
        """The owner has answered these events."""
        await self._write(
            ownership.settle_claims, platform=platform, event_ids=event_ids, owner=owner
        )

    async def release_claims(self, *, platform: str, event_ids: Sequence[str], owner: str) -> None:
        """The owner could not record these events: their next delivery is handled."""
        await self._write(
            ownership.release_claims, platform=platform, event_ids=event_ids, owner=owner
        )

    # -- usage ---------------------------------------------------------------------

    async def jobs_since(self, *, platform: str, user: str, since: datetime) -> int:
        """Turns a user started since a moment, not counting failed ones."""
        return await self._read(records.jobs_since, platform=platform, user=user, since=since)

    async def first_job_since(
        self, *, platform: str, user: str, since: datetime
    ) -> datetime | None:
        """When the first of those turns started."""
        return await self._read(records.first_job_since, platform=platform, user=user, since=since)

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
        return await self._read(
            usage_ledger.usage_totals, platform=platform, workspace=workspace, user=user,
            since=since,
        )  # fmt: skip

    async def pending_images(
        self, *, platform: str, workspace: str | None = None, user: str | None = None
    ) -> list[PendingImages]:
        """The images pending turns of a user and/or a workspace are making, by model and size."""
        return await self._read(
            usage_ledger.pending_images, platform=platform, workspace=workspace, user=user
        )

    async def record_possibly_billed(
        self, *, platform: str, workspace: str, user: str, calls: int
    ) -> None:
        """Count upstream calls that may have been billed for a job that then failed."""
        await self._write(
            usage_ledger.record_possibly_billed, platform=platform, workspace=workspace,
            user=user, calls=calls, now=self._now(),
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
        await self._write(
            usage_ledger.set_budget, platform=platform, workspace=workspace, scope=scope,
            subject=subject, monthly_usd=monthly_usd,
        )  # fmt: skip

    async def budgets(self, *, platform: str, workspace: str) -> list[Budget]:
        """The budgets set in a workspace, by scope (user, role, workspace) then subject."""
        return await self._read(usage_ledger.budgets, platform=platform, workspace=workspace)

    # -- retention -----------------------------------------------------------------

    async def prune(self, *, before: datetime) -> int:
        """Delete turns older than a moment and images no turn refers to; returns turns removed."""
        removed = 0
        while True:
            batch = await self._write(records.prune_batch, before=before, size=PRUNE_BATCH)
            removed += batch
            if batch < PRUNE_BATCH:
                break
        await self._write(records.forget_events, before=self._clock() - EVENT_RETENTION)
        if removed:
            logger.info("pruned %s turns created before %s", removed, before.isoformat())
        return removed
