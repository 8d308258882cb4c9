"""The in-memory store's turn leases, event claims and named leases, as plain steps."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.errors import AlreadyHandled
from bot.models import ThreadKey, Turn, TurnStatus
from storage import memory_tables
from storage.memory_tables import EventRow, Tables
from storage.times import lease_end

logger = logging.getLogger(__name__)


def _live(lease_until: datetime | None, now: datetime) -> bool:
    return lease_until is not None and lease_until >= now


def start_turn(
    tables: Tables,
    thread_id: int,
    *,
    owner: str,
    lease: float,
    claims: Sequence[str],
    now: datetime,
    **turn: Any,
) -> Turn:
    """A pending turn held by owner, and the claims it answers settled, or neither."""
    thread = tables.threads.get(thread_id)
    platform = "" if thread is None else thread.platform
    for event_id in claims:
        row = tables.events.get((platform, event_id))
        held = row is not None and row.owner != owner and _live(row.lease_until, now)
        if row is not None and (row.settled or held):
            raise AlreadyHandled()
    started = memory_tables.start_turn(
        tables, thread_id, owner=owner, lease_until=lease_end(now, lease), now=now,
        **turn,
    )  # fmt: skip
    for event_id in claims:
        tables.events[platform, event_id] = EventRow(now, owner, None, settled=True)
    return started


def finish_turn(tables: Tables, turn_id: int, *, owner: str, **done: Any) -> Turn:
    """Finish the owner's turn; one another process failed when its lease ran out, too."""
    row = tables.turns.get(turn_id)
    if row is None or row.owner != owner or row.turn.status is TurnStatus.DONE:
        raise LookupError(f"turn {turn_id} is not pending under {owner}")
    if row.turn.status is TurnStatus.FAILED:
        logger.warning(
            "turn %s was reported failed by another process after its lease ran out; "
            "its result is delivered all the same",
            turn_id,
        )
    return memory_tables.finish_turn(tables, turn_id, **done)


def fail_expired(
    tables: Tables, *, error: str, platforms: Sequence[str], now: datetime
) -> list[tuple[Turn, ThreadKey]]:
    failed: list[tuple[Turn, ThreadKey]] = []
    for row in tables.turns.values():
        pending = row.turn.status is TurnStatus.PENDING and row.platform in platforms
        if pending and not _live(row.lease_until, now):
            row.turn = replace(row.turn, status=TurnStatus.FAILED, error=error)
            # The newest alias: where the conversation went on after its first turn.
            failed.append((row.turn, tables.threads[row.turn.thread_id].keys[-1]))
    return failed


def renew(tables: Tables, *, owner: str, lease: float, now: datetime) -> int:
    until = lease_end(now, lease)
    held = 0
    for turn in tables.turns.values():
        if turn.owner == owner and turn.turn.status is TurnStatus.PENDING:
            turn.lease_until, held = until, held + 1
    for event in tables.events.values():
        if event.owner == owner and not event.settled:
            event.lease_until, held = until, held + 1
    for name, (holder, _) in tables.leases.items():
        if holder == owner:
            tables.leases[name], held = (owner, until), held + 1
    return held


def acquire_lease(tables: Tables, name: str, *, owner: str, lease: float, now: datetime) -> bool:
    held = tables.leases.get(name)
    if held is not None and held[0] != owner and held[1] >= now:
        return False
    tables.leases[name] = (owner, lease_end(now, lease))
    return True


def release_lease(tables: Tables, name: str, *, owner: str) -> None:
    held = tables.leases.get(name)
    if held is not None and held[0] == owner:
        del tables.leases[name]


def claim_event(
    tables: Tables, *, platform: str, event_id: str, owner: str, lease: float, now: datetime
) -> bool:
    row = tables.events.get((platform, event_id))
    if row is not None and (row.settled or _live(row.lease_until, now)):
        return False
    until = lease_end(now, lease)
    tables.events[platform, event_id] = EventRow(now, owner, until, settled=False)
    return True


def settle_claims(tables: Tables, *, platform: str, event_ids: Sequence[str], owner: str) -> None:
    for event_id in event_ids:
        row = tables.events.get((platform, event_id))
        if row is not None and row.owner == owner:
            row.settled, row.lease_until = True, None


def release_claims(tables: Tables, *, platform: str, event_ids: Sequence[str], owner: str) -> None:
    for event_id in event_ids:
        row = tables.events.get((platform, event_id))
        if row is not None and row.owner == owner and not row.settled:
            del tables.events[platform, event_id]
