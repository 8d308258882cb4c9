"""The in-memory store's message links, claimed events, job counts and retention, as plain steps."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bot.models import Turn, TurnStatus
from storage.memory_tables import Tables
from storage.times import as_utc


def link_message(tables: Tables, turn_id: int, *, platform: str, message_id: str) -> None:
    if turn_id not in tables.turns:
        raise LookupError(f"no turn {turn_id}")
    tables.messages[platform, message_id] = turn_id


def turn_for_message(tables: Tables, *, platform: str, message_id: str) -> Turn | None:
    turn_id = tables.messages.get((platform, message_id))
    return None if turn_id is None else tables.turns[turn_id].turn


def message_for_turn(tables: Tables, turn_id: int, *, platform: str) -> str | None:
    # The smallest id, as SQLite's index on (turn, platform) hands out the first of several.
    linked = (m for (p, m), t in tables.messages.items() if t == turn_id and p == platform)
    return min(linked, default=None)


def jobs_since(tables: Tables, *, platform: str, user: str, since: datetime) -> int:
    since = as_utc(since)
    return sum(
        1
        for row in tables.turns.values()
        if row.platform == platform
        and row.turn.user == user
        and row.created_at >= since
        and row.turn.status is not TurnStatus.FAILED
    )


def first_job_since(
    tables: Tables, *, platform: str, user: str, since: datetime
) -> datetime | None:
    since = as_utc(since)
    return min(
        (
            row.created_at
            for row in tables.turns.values()
            if row.platform == platform
            and row.turn.user == user
            and row.created_at >= since
            and row.turn.status is not TurnStatus.FAILED
        ),
        default=None,
    )


def prune(tables: Tables, *, before: datetime) -> int:
    """Delete turns created before a moment, and what only they referred to."""
    before = as_utc(before)
    old = [row for row in tables.turns.values() if row.created_at < before]
    gone = {row.turn.id for row in old}
    for row in old:
        del tables.turns[row.turn.id]
        _forget_images(tables, (*row.turn.inputs, *row.turn.outputs))
    tables.messages = {k: turn_id for k, turn_id in tables.messages.items() if turn_id not in gone}
    for row in tables.turns.values():
        if row.turn.parent_id in gone:
            row.turn = replace(row.turn, parent_id=None)
    _settle_threads(tables, {row.turn.thread_id for row in old}, gone=gone)
    return len(old)


def _forget_images(tables: Tables, hashes: tuple[str, ...]) -> None:
    tables.image_uses.subtract(hashes)
    for sha256 in set(hashes):
        if tables.image_uses[sha256] <= 0:
            del tables.image_uses[sha256]
            del tables.images[sha256]


def _settle_threads(tables: Tables, thread_ids: set[int], *, gone: set[int]) -> None:
    """A thread that lost its head takes its last-started done turn, or none; empty is pruned."""
    left: dict[int, list[Turn]] = {thread_id: [] for thread_id in thread_ids}
    for row in tables.turns.values():
        if row.turn.thread_id in left:
            left[row.turn.thread_id].append(row.turn)
    for thread_id, turns in left.items():
        thread = tables.threads[thread_id]
        if thread.head_id in gone:
            thread.head_id = None
        if thread.head_id is None:
            done = [turn.id for turn in turns if turn.status is TurnStatus.DONE]
            thread.head_id = max(done, default=None)
            thread.pruned = not turns


def forget_events(tables: Tables, *, before: datetime) -> int:
    before = as_utc(before)
    old = [claim for claim, row in tables.events.items() if row.claimed_at < before]
    for claim in old:
        del tables.events[claim]
    return len(old)
