"""The Store protocol the core depends on; each backend passes the tests/storage contract suite.

Several processes may share one store (the Procfile's two roles, replicas, the terminal), so
work in progress is owned: a pending turn, an event claim and a named lease each record the
instance that holds them and until when (`lease` seconds from now, extended by `renew`).
Another process takes them over only once that time has passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

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


class Store(Protocol):
    """Durable state: threads, turns (a tree per thread), images by hash, events, usage."""

    async def open(self) -> None:
        """Connect and migrate the schema to the current version."""

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """True while the store answers a trivial query."""

    async def probe_write(self) -> bool:
        """True when a small real write commits (false when, say, the disk is full)."""

    # -- threads ---------------------------------------------------------------

    async def get_thread(self, key: ThreadKey) -> Thread | None:
        """The thread a key (or an alias of it) names."""

    async def create_thread(self, key: ThreadKey) -> Thread:
        """A new thread under key; returns the existing one if the key is taken."""

    async def thread_key(self, thread_id: int) -> ThreadKey | None:
        """The key a thread was created under."""

    async def add_alias(self, thread_id: int, *, key: ThreadKey) -> None:
        """Let a second key (a platform thread made later) name the same thread."""

    # -- turns -----------------------------------------------------------------

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
        """Store a pending turn held by owner, its input images (once per content hash), and
        settle the owner's claims on event ids of the thread's platform, all in one
        transaction; AlreadyHandled, and nothing stored, when another holds or settled one."""

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
        """Mark the owner's turn done, store its outputs, add usage to the ledger; with head,
        move the thread's head to it (else move_head does, once the result was delivered).

        The ledger line carries the turn's model and size (its cost by size) and how many
        upstream calls may have been billed without a result (possibly_billed).

        A turn another process failed because its lease ran out is finished all the same
        (its owner still delivers it); a turn of another owner is refused with LookupError.
        """

    async def move_head(self, turn_id: int) -> None:
        """Make a done turn its thread's head."""

    async def fail_turn(self, turn_id: int, *, error: str) -> Turn:
        """Mark a pending turn failed with the message the user saw."""

    async def get_turn(self, turn_id: int) -> Turn | None: ...

    async def lineage(self, turn_id: int, *, limit: int) -> list[Turn]:
        """The turn and up to limit-1 of its done ancestors, oldest first."""

    async def load_images(self, hashes: Sequence[str]) -> list[Image]:
        """Image bytes by content hash, in the order asked; missing hashes are skipped."""

    async def fail_expired(
        self, *, error: str, platforms: Sequence[str]
    ) -> list[tuple[Turn, ThreadKey]]:
        """Mark failed the pending turns of these platforms whose lease ran out (their process
        died), so that the caller, which serves them, tells their users; return each,
        once across all processes, with the key of the place its conversation lives now (a
        later alias rather than the first key)."""

    # -- ownership ------------------------------------------------------------------

    async def renew(self, *, owner: str, lease: float) -> int:
        """Extend everything owner holds (pending turns, open claims, leases) by lease seconds
        from now; returns how many things it holds."""

    async def acquire_lease(self, name: str, *, owner: str, lease: float) -> bool:
        """True when owner holds the named lease for lease seconds from now: it was free, it
        had run out, or owner held it already."""

    async def release_lease(self, name: str, *, owner: str) -> None:
        """Give the named lease up, if owner holds it."""

    # -- platform messages --------------------------------------------------------

    async def link_message(self, turn_id: int, *, platform: str, message_id: str) -> None:
        """Remember which platform message shows a turn's result."""

    async def turn_for_message(self, *, platform: str, message_id: str) -> Turn | None: ...

    async def message_for_turn(self, turn_id: int, *, platform: str) -> str | None: ...

    # -- dedupe -------------------------------------------------------------------

    async def claim_event(self, *, platform: str, event_id: str, owner: str, lease: float) -> bool:
        """True when owner now holds the event id: its first delivery, or a claim whose holder's
        lease ran out before it was settled; False for every other repeat."""

    async def settle_claims(self, *, platform: str, event_ids: Sequence[str], owner: str) -> None:
        """The owner has answered these events: every later delivery of them is a repeat."""

    async def release_claims(self, *, platform: str, event_ids: Sequence[str], owner: str) -> None:
        """The owner could not record these events: their next delivery is handled again."""

    # -- usage --------------------------------------------------------------------

    async def jobs_since(self, *, platform: str, user: str, since: datetime) -> int:
        """Turns a user started since a moment, not counting failed ones."""

    async def first_job_since(
        self, *, platform: str, user: str, since: datetime
    ) -> datetime | None:
        """When the first of those turns started."""

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

    async def pending_images(
        self, *, platform: str, workspace: str | None = None, user: str | None = None
    ) -> list[PendingImages]:
        """The images pending turns of a user and/or a workspace are making, by model and size:
        what budgets count beside the ledger, which sees a turn only once it is finished."""

    async def record_possibly_billed(
        self, *, platform: str, workspace: str, user: str, calls: int
    ) -> None:
        """Count upstream calls that may have been billed for a job that then failed."""

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
        """Set a monthly cost budget (None removes it); every process sees it at once."""

    async def budgets(self, *, platform: str, workspace: str) -> list[Budget]:
        """The budgets set in a workspace, by scope then subject."""

    # -- retention ----------------------------------------------------------------

    async def prune(self, *, before: datetime) -> int:
        """Delete turns older than a moment and images no turn refers to; returns turns removed."""
