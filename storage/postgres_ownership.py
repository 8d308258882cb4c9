"""Who holds what in a shared PostgreSQL database: turn leases, event claims, named leases.

Each decision is one statement whose WHERE clause re-checks the row it locks (an UPDATE, or
an INSERT ... ON CONFLICT DO UPDATE), so processes racing for the same row each see the
other's commit and exactly one of them wins, under PostgreSQL's default READ COMMITTED.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.errors import AlreadyHandled
from bot.models import Image, ThreadKey, Turn
from storage import postgres_queries as queries
from storage import postgres_turns as turn_writes
from storage.postgres_queries import Db
from storage.postgres_rows import row_count
from storage.times import lease_end

logger = logging.getLogger(__name__)


async def start_turn(
    db: Db,
    /,
    thread_id: int,
    *,
    owner: str,
    lease: float,
    claims: Sequence[str],
    inputs: Sequence[Image],
    now: datetime,
    **turn: Any,
) -> Turn:
    """A pending turn held by owner, and the claims it answers settled, in one transaction."""
    started, platform = await turn_writes.insert_turn(
        db, thread_id, owner=owner, lease_until=lease_end(now, lease), now=now, **turn
    )
    # Claims before images: a refused turn is rolled back before megabytes are sent.
    if claims:
        await _settle_for_turn(db, platform=platform, claims=claims, owner=owner, now=now)
    return await turn_writes.attach_inputs(db, started, inputs)


async def _settle_for_turn(
    db: Db, *, platform: str, claims: Sequence[str], owner: str, now: datetime
) -> None:
    """Settle the claims as owner's; AlreadyHandled when one is settled or held by another."""
    wanted = list(dict.fromkeys(claims))
    taken = await db.fetch(
        "INSERT INTO events AS e (platform, event_id, claimed_at, owner, lease_until, settled)"
        " SELECT $1, id, $3, $4, NULL, true FROM unnest($2::text[]) AS id"
        " ON CONFLICT (platform, event_id) DO UPDATE SET owner = excluded.owner,"
        " lease_until = NULL, settled = true WHERE NOT e.settled AND (e.owner = excluded.owner"
        " OR e.lease_until IS NULL OR e.lease_until < $3) RETURNING e.event_id",
        platform, wanted, now, owner,
    )  # fmt: skip
    if len(taken) != len(wanted):
        raise AlreadyHandled()


async def finish_turn(db: Db, /, turn_id: int, *, owner: str, **done: Any) -> Turn:
    """Finish the owner's turn; one another process failed when its lease ran out, too."""
    finished = await turn_writes.finish_turn(db, turn_id, owner=owner, **done)
    if finished is None:
        raise LookupError(f"turn {turn_id} is not pending under {owner}")
    turn, was = finished
    if was == "failed":
        logger.warning(
            "turn %s was reported failed by another process after its lease ran out; "
            "its result is delivered all the same",
            turn_id,
        )
    return turn


async def fail_expired(
    db: Db, *, error: str, platforms: Sequence[str], now: datetime
) -> list[tuple[Turn, ThreadKey]]:
    # A concurrent UPDATE of the same row waits for this one, re-reads it, finds it failed
    # and skips it: each turn is returned by exactly one process.
    failed = await db.fetch(
        "UPDATE turns SET status = 'failed', error = $1, finished_at = $2"
        " WHERE status = 'pending' AND (lease_until IS NULL OR lease_until < $2)"
        " AND platform = ANY($3::text[]) RETURNING id",
        error, now, list(platforms),
    )  # fmt: skip
    if not failed:
        return []
    turns = await queries.turns_where(db, "t.id = ANY($1::bigint[])", [r["id"] for r in failed])
    keys = await queries.first_keys(db, sorted({t.thread_id for t in turns}), prefer_alias=True)
    return [(t, keys[t.thread_id]) for t in turns]


async def renew(db: Db, *, owner: str, lease: float, now: datetime) -> int:
    end = lease_end(now, lease)
    statements = (
        "UPDATE turns SET lease_until = $1 WHERE status = 'pending' AND owner = $2",
        "UPDATE events SET lease_until = $1 WHERE NOT settled AND owner = $2",
        "UPDATE leases SET lease_until = $1 WHERE owner = $2",
    )
    return sum([row_count(await db.execute(sql, end, owner)) for sql in statements])


async def acquire_lease(db: Db, name: str, *, owner: str, lease: float, now: datetime) -> bool:
    taken = await db.fetchval(
        "INSERT INTO leases AS l (name, owner, lease_until) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
        " lease_until = excluded.lease_until"
        " WHERE l.owner = excluded.owner OR l.lease_until < $4 RETURNING name",
        name, owner, lease_end(now, lease), now,
    )  # fmt: skip
    return taken is not None


async def release_lease(db: Db, name: str, *, owner: str) -> None:
    await db.execute("DELETE FROM leases WHERE name = $1 AND owner = $2", name, owner)


async def claim_event(
    db: Db, *, platform: str, event_id: str, owner: str, lease: float, now: datetime
) -> bool:
    # A claim whose holder died before settling it is free again: that delivery was never
    # answered, so the platform's retry must be. A live claim is a repeat, even for its owner.
    taken = await db.fetchval(
        "INSERT INTO events AS e (platform, event_id, claimed_at, owner, lease_until, settled)"
        " VALUES ($1, $2, $3, $4, $5, false) ON CONFLICT (platform, event_id) DO UPDATE SET"
        " owner = excluded.owner, lease_until = excluded.lease_until,"
        " claimed_at = excluded.claimed_at"
        " WHERE NOT e.settled AND (e.lease_until IS NULL OR e.lease_until < $3)"
        " RETURNING event_id",
        platform, event_id, now, owner, lease_end(now, lease),
    )  # fmt: skip
    return taken is not None


async def settle_claims(db: Db, *, platform: str, event_ids: Sequence[str], owner: str) -> None:
    await db.execute(
        "UPDATE events SET settled = true, lease_until = NULL"
        " WHERE platform = $1 AND event_id = ANY($2::text[]) AND owner = $3",
        platform, list(event_ids), owner,
    )  # fmt: skip


async def release_claims(db: Db, *, platform: str, event_ids: Sequence[str], owner: str) -> None:
    await db.execute(
        "DELETE FROM events WHERE platform = $1 AND event_id = ANY($2::text[])"
        " AND owner = $3 AND NOT settled",
        platform, list(event_ids), owner,
    )  # fmt: skip
