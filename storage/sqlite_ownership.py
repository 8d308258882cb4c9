"""Who holds what in a shared SQLite file: turn leases, event claims and named leases."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.errors import AlreadyHandled
from bot.models import ThreadKey, Turn
from storage import sqlite_queries as queries
from storage.sqlite_queries import chunks, first_keys, turns_where
from storage.sqlite_rows import placeholders, to_micros
from storage.times import lease_end

logger = logging.getLogger(__name__)


def until(now: datetime, lease: float) -> int:
    """The end of a lease of `lease` seconds from now, as stored."""
    return to_micros(lease_end(now, lease))


def start_turn(
    db: sqlite3.Connection,
    /,
    thread_id: int,
    *,
    owner: str,
    lease: float,
    claims: Sequence[str],
    now: datetime,
    **turn: Any,
) -> Turn:
    """A pending turn held by owner, and the claims it answers settled, in one transaction."""
    started = queries.start_turn(
        db, thread_id, owner=owner, lease_until=until(now, lease), now=now, **turn
    )
    if claims:
        (platform,) = db.execute(
            "SELECT platform FROM threads WHERE id = ?", (thread_id,)
        ).fetchone()
        _settle_for_turn(db, platform=platform, claims=claims, owner=owner, now=now)
    return started


def finish_turn(db: sqlite3.Connection, /, turn_id: int, *, owner: str, **done: Any) -> Turn:
    """Finish the owner's turn; one another process failed when its lease ran out, too."""
    row = db.execute("SELECT status, owner FROM turns WHERE id = ?", (turn_id,)).fetchone()
    if row is None or row[1] != owner or row[0] == "done":
        raise LookupError(f"turn {turn_id} is not pending under {owner}")
    if row[0] == "failed":
        logger.warning(
            "turn %s was reported failed by another process after its lease ran out; "
            "its result is delivered all the same",
            turn_id,
        )
    return queries.finish_turn(db, turn_id, **done)


def _settle_for_turn(
    db: sqlite3.Connection,
    *,
    platform: str,
    claims: Sequence[str],
    owner: str,
    now: datetime,
) -> None:
    for event_id in claims:
        row = db.execute(
            "SELECT owner, lease_until, settled FROM events WHERE platform = ? AND event_id = ?",
            (platform, event_id),
        ).fetchone()
        if row is not None:
            holder, lease_until, settled = row
            live = lease_until is not None and lease_until >= to_micros(now)
            if settled or (holder != owner and live):
                raise AlreadyHandled()
        db.execute(
            "INSERT INTO events (platform, event_id, claimed_at, owner, lease_until, settled)"
            " VALUES (?, ?, ?, ?, NULL, 1) ON CONFLICT DO UPDATE SET owner = excluded.owner,"
            " lease_until = NULL, settled = 1",
            (platform, event_id, to_micros(now), owner),
        )


def fail_expired(
    db: sqlite3.Connection, *, error: str, platforms: Sequence[str], now: datetime
) -> list[tuple[Turn, ThreadKey]]:
    if not platforms:
        return []
    failed = db.execute(
        "UPDATE turns SET status = 'failed', error = ?, finished_at = ?"
        " WHERE status = 'pending' AND (lease_until IS NULL OR lease_until < ?)"
        f" AND platform IN ({placeholders(len(platforms))}) RETURNING id",
        (error, to_micros(now), to_micros(now), *platforms),
    ).fetchall()
    ids = sorted(row[0] for row in failed)
    turns: list[Turn] = []
    for chunk in chunks(ids):
        turns += turns_where(db, f"t.id IN ({placeholders(len(chunk))})", chunk)
    keys = first_keys(db, sorted({t.thread_id for t in turns}), prefer_alias=True)
    return [(t, keys[t.thread_id]) for t in turns]


def renew(db: sqlite3.Connection, *, owner: str, lease: float, now: datetime) -> int:
    end = until(now, lease)
    held = db.execute(
        "UPDATE turns SET lease_until = ? WHERE status = 'pending' AND owner = ?", (end, owner)
    ).rowcount
    held += db.execute(
        "UPDATE events SET lease_until = ? WHERE settled = 0 AND owner = ?", (end, owner)
    ).rowcount
    held += db.execute("UPDATE leases SET lease_until = ? WHERE owner = ?", (end, owner)).rowcount
    return int(held)


def acquire_lease(
    db: sqlite3.Connection, name: str, *, owner: str, lease: float, now: datetime
) -> bool:
    taken = db.execute(
        "INSERT INTO leases (name, owner, lease_until) VALUES (?, ?, ?)"
        " ON CONFLICT DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until"
        " WHERE leases.owner = excluded.owner OR leases.lease_until < ? RETURNING name",
        (name, owner, until(now, lease), to_micros(now)),
    ).fetchall()
    return bool(taken)


def release_lease(db: sqlite3.Connection, name: str, *, owner: str) -> None:
    db.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))


def claim_event(
    db: sqlite3.Connection,
    *,
    platform: str,
    event_id: str,
    owner: str,
    lease: float,
    now: datetime,
) -> bool:
    # A claim whose holder died before settling it is free again: that delivery was never
    # answered, so the platform's retry must be.
    taken = db.execute(
        "INSERT INTO events (platform, event_id, claimed_at, owner, lease_until, settled)"
        " VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT DO UPDATE SET owner = excluded.owner,"
        " lease_until = excluded.lease_until, claimed_at = excluded.claimed_at"
        " WHERE events.settled = 0 AND events.lease_until < ? RETURNING event_id",
        (platform, event_id, to_micros(now), owner, until(now, lease), to_micros(now)),
    ).fetchall()
    return bool(taken)


def settle_claims(
    db: sqlite3.Connection, *, platform: str, event_ids: Sequence[str], owner: str
) -> None:
    db.executemany(
        "UPDATE events SET settled = 1, lease_until = NULL"
        " WHERE platform = ? AND event_id = ? AND owner = ?",
        [(platform, event_id, owner) for event_id in event_ids],
    )


def release_claims(
    db: sqlite3.Connection, *, platform: str, event_ids: Sequence[str], owner: str
) -> None:
    db.executemany(
        "DELETE FROM events WHERE platform = ? AND event_id = ? AND owner = ? AND settled = 0",
        [(platform, event_id, owner) for event_id in event_ids],
    )
