"""The Store protocol the core depends on; each backend passes the tests/storage contract suite."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

from bot.models import Image, Thread, ThreadKey, Turn, Usage, UsageTotals


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
    ) -> Turn:
        """Store a pending turn and its input images (once per content hash)."""

    async def finish_turn(
        self,
        turn_id: int,
        *,
        outputs: Sequence[Image],
        text: str,
        usage: Usage,
        parts_json: str,
        cost_usd: float = 0.0,
        head: bool = True,
    ) -> Turn:
        """Mark a turn done, store its outputs, add usage to the ledger; with head, move the
        thread's head to it (else move_head does, once the result has been delivered)."""

    async def move_head(self, turn_id: int) -> None:
        """Make a done turn its thread's head."""

    async def fail_turn(self, turn_id: int, *, error: str) -> Turn:
        """Mark a pending turn failed with the message the user saw."""

    async def get_turn(self, turn_id: int) -> Turn | None: ...

    async def lineage(self, turn_id: int, *, limit: int) -> list[Turn]:
        """The turn and up to limit-1 of its done ancestors, oldest first."""

    async def load_images(self, hashes: Sequence[str]) -> list[Image]:
        """Image bytes by content hash, in the order asked; missing hashes are skipped."""

    async def fail_pending(self, *, error: str) -> list[tuple[Turn, ThreadKey]]:
        """At start-up: mark turns left pending by a crash failed; return each with the key of
        the place its conversation lives now (a later alias rather than the first key)."""

    # -- platform messages --------------------------------------------------------

    async def link_message(self, turn_id: int, *, platform: str, message_id: str) -> None:
        """Remember which platform message shows a turn's result."""

    async def turn_for_message(self, *, platform: str, message_id: str) -> Turn | None: ...

    async def message_for_turn(self, turn_id: int, *, platform: str) -> str | None: ...

    # -- dedupe -------------------------------------------------------------------

    async def claim_event(self, *, platform: str, event_id: str) -> bool:
        """True the first time an event id is claimed, False for every repeat."""

    # -- usage --------------------------------------------------------------------

    async def jobs_since(self, *, platform: str, user: str, since: datetime) -> int:
        """Turns a user started since a moment, not counting failed ones."""

    async def usage_totals(
        self,
        *,
        platform: str,
        workspace: str | None = None,
        user: str | None = None,
        since: date,
    ) -> UsageTotals:
        """Sums from the ledger for a user and/or a workspace since a day (inclusive)."""

    # -- retention ----------------------------------------------------------------

    async def prune(self, *, before: datetime) -> int:
        """Delete turns older than a moment and images no turn refers to; returns turns removed."""
