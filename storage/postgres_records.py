"""Message links, job counts and retention in PostgreSQL; writes run in the caller's transaction."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from bot.models import Turn
from storage.postgres_queries import Db, turns_where
from storage.postgres_rows import row_count

_NOT_FAILED_SINCE = "platform = $1 AND user_id = $2 AND created_at >= $3 AND status <> 'failed'"


async def link_message(db: Db, turn_id: int, *, platform: str, message_id: str) -> None:
    try:
        await db.execute(
            "INSERT INTO messages (platform, message_id, turn_id) VALUES ($1, $2, $3)"
            " ON CONFLICT (platform, message_id) DO UPDATE SET turn_id = excluded.turn_id",
            platform, message_id, turn_id,
        )  # fmt: skip
    except asyncpg.ForeignKeyViolationError as exc:
        raise LookupError(f"no turn {turn_id}") from exc


async def turn_for_message(db: Db, *, platform: str, message_id: str) -> Turn | None:
    found = await turns_where(
        db,
        "t.id = (SELECT turn_id FROM messages WHERE platform = $1 AND message_id = $2)",
        platform, message_id,
    )  # fmt: skip
    return found[0] if found else None


async def message_for_turn(db: Db, turn_id: int, *, platform: str) -> str | None:
    # The smallest id, compared byte by byte as the other stores compare it, whatever the
    # database's collation.
    found = await db.fetchval(
        "SELECT message_id FROM messages WHERE turn_id = $1 AND platform = $2"
        ' ORDER BY message_id COLLATE "C" LIMIT 1',
        turn_id, platform,
    )  # fmt: skip
    return None if found is None else str(found)


async def jobs_since(db: Db, *, platform: str, user: str, since: datetime) -> int:
    count = await db.fetchval(
        f"SELECT count(*) FROM turns WHERE {_NOT_FAILED_SINCE}", platform, user, since
    )
    return int(count)


async def first_job_since(db: Db, *, platform: str, user: str, since: datetime) -> datetime | None:
    first: datetime | None = await db.fetchval(
        f"SELECT min(created_at) FROM turns WHERE {_NOT_FAILED_SINCE}", platform, user, since
    )
    return first


async def prune_batch(db: Db, *, before: datetime, size: int) -> int:
    """Delete up to size turns created before a moment, and what only they referred to."""
    old = await db.fetch(
        "SELECT id, thread_id FROM turns WHERE created_at < $1 ORDER BY created_at LIMIT $2"
        " FOR UPDATE SKIP LOCKED",
        before, size,
    )  # fmt: skip
    if not old:
        return 0
    ids = [row["id"] for row in old]
    # Foreign keys cascade to turn_images and messages, and set to NULL the parent_id of
    # younger children and the head_id of threads pointing at a deleted turn.
    hashes = await db.fetch(
        "WITH gone AS (DELETE FROM turn_images WHERE turn_id = ANY($1::bigint[])"
        " RETURNING sha256) SELECT DISTINCT sha256 FROM gone",
        ids,
    )
    await db.execute("DELETE FROM turns WHERE id = ANY($1::bigint[])", ids)
    await db.execute(
        "DELETE FROM images WHERE sha256 = ANY($1::bytea[]) AND NOT EXISTS"
        " (SELECT 1 FROM turn_images AS i WHERE i.sha256 = images.sha256)",
        [row["sha256"] for row in hashes],
    )
    await db.execute(
        "UPDATE threads SET"
        " head_id = (SELECT max(t.id) FROM turns AS t"
        " WHERE t.thread_id = threads.id AND t.status = 'done'),"
        " pruned = NOT EXISTS (SELECT 1 FROM turns AS t WHERE t.thread_id = threads.id)"
        " WHERE head_id IS NULL AND id = ANY($1::bigint[])",
        sorted({row["thread_id"] for row in old}),
    )
    return len(ids)


async def forget_events(db: Db, *, before: datetime) -> int:
    return row_count(await db.execute("DELETE FROM events WHERE claimed_at < $1", before))


async def probe_write(db: Db, now: datetime) -> None:
    """Rewrite the health row: a real write, so a database refusing writes fails here."""
    await db.execute(
        "INSERT INTO health (id, written_at) VALUES (1, $1)"
        " ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at",
        now,
    )
