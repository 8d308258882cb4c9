"""Threads, turn reads and images in PostgreSQL; writes run inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeAlias

import asyncpg

from bot.models import Image, Thread, ThreadKey, Turn
from storage.hashes import hash_bytes
from storage.postgres_rows import (
    TURN_SELECT,
    key_from_record,
    row_count,
    thread_from_record,
    turns_from_records,
)

Db: TypeAlias = asyncpg.Connection

_KEY_MATCH = "platform = $1 AND workspace = $2 AND channel = $3 AND thread = $4"


def _key_values(key: ThreadKey) -> tuple[str, str, str, str]:
    return (key.platform, key.workspace, key.channel, key.thread)


# -- threads -----------------------------------------------------------------------


async def thread_by_key(db: Db, key: ThreadKey) -> Thread | None:
    row = await db.fetchrow(
        "SELECT h.id, h.head_id, h.turn_count, h.pruned, h.created_at"
        " FROM thread_keys AS k JOIN threads AS h ON h.id = k.thread_id"
        " WHERE k.platform = $1 AND k.workspace = $2 AND k.channel = $3 AND k.thread = $4",
        *_key_values(key),
    )
    return thread_from_record(row, key) if row else None


async def create_thread(db: Db, key: ThreadKey, *, now: datetime) -> Thread:
    existing = await thread_by_key(db, key)
    if existing is not None:
        return existing
    thread_id = await db.fetchval(
        "INSERT INTO threads (platform, workspace, created_at) VALUES ($1, $2, $3) RETURNING id",
        key.platform, key.workspace, now,
    )  # fmt: skip
    if await _insert_key(db, thread_id, key, is_alias=False):
        return Thread(id=thread_id, key=key, head_id=None, created_at=now)
    # Another process created the thread since the look-up (its insert has committed, or the
    # conflict would still be waiting): the one thread under the key is theirs.
    await db.execute("DELETE FROM threads WHERE id = $1", thread_id)
    raced = await thread_by_key(db, key)
    if raced is None:
        raise LookupError(f"the thread under {key} vanished while it was created")
    return raced


async def add_alias(db: Db, thread_id: int, *, key: ThreadKey) -> None:
    try:
        added = await _insert_key(db, thread_id, key, is_alias=True)
    except asyncpg.ForeignKeyViolationError as exc:
        raise LookupError(f"no thread {thread_id}") from exc
    if added:
        return
    owner = await db.fetchval(
        f"SELECT thread_id FROM thread_keys WHERE {_KEY_MATCH}", *_key_values(key)
    )
    if owner != thread_id:
        raise ValueError(f"{key} already names thread {owner}")


async def _insert_key(db: Db, thread_id: int, key: ThreadKey, *, is_alias: bool) -> bool:
    """True when the key now names thread_id; False when it was taken already."""
    status = await db.execute(
        "INSERT INTO thread_keys (platform, workspace, channel, thread, thread_id, is_alias)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        *_key_values(key), thread_id, is_alias,
    )  # fmt: skip
    return row_count(status) == 1


async def first_keys(
    db: Db, thread_ids: Sequence[int], *, prefer_alias: bool = False
) -> dict[int, ThreadKey]:
    """The key each thread was created under, or with prefer_alias the one it lives under now.

    An alias is a platform thread made after the first turn (a Discord thread started from the
    result message): that is where the conversation went on, the newest alias most of all.
    """
    rows = await db.fetch(
        "SELECT DISTINCT ON (thread_id) thread_id, platform, workspace, channel, thread"
        " FROM thread_keys WHERE thread_id = ANY($1::bigint[]) AND (is_alias = false OR $2)"
        " ORDER BY thread_id, is_alias DESC, added DESC",
        list(thread_ids), prefer_alias,
    )  # fmt: skip
    return {row["thread_id"]: key_from_record(row) for row in rows}


# -- turns -------------------------------------------------------------------------


async def turns_where(db: Db, condition: str, *params: object) -> list[Turn]:
    """Turns matching a condition on `t`, with their image hashes, by id."""
    rows = await db.fetch(f"{TURN_SELECT} FROM turns AS t WHERE {condition} ORDER BY t.id", *params)
    return turns_from_records(rows)


async def turn(db: Db, turn_id: int) -> Turn | None:
    found = await turns_where(db, "t.id = $1", turn_id)
    return found[0] if found else None


async def ancestry(db: Db, turn_id: int, *, limit: int) -> list[Turn]:
    """The turn and up to limit-1 done ancestors, oldest first."""
    # The walk up the tree stops as soon as enough done ancestors are found, so its cost
    # is bounded by limit, not by the depth of the thread.
    rows = await db.fetch(
        "WITH RECURSIVE chain (id, parent_id, depth, found) AS ("
        " SELECT id, parent_id, 0, 1 FROM turns WHERE id = $1"
        " UNION ALL"
        " SELECT p.id, p.parent_id, c.depth + 1, c.found + (p.status = 'done')::int"
        " FROM chain AS c JOIN turns AS p ON p.id = c.parent_id WHERE c.found < $2"
        f") {TURN_SELECT} FROM chain AS c JOIN turns AS t ON t.id = c.id"
        " WHERE c.depth = 0 OR t.status = 'done' ORDER BY c.depth DESC",
        turn_id, limit,
    )  # fmt: skip
    return turns_from_records(rows)


async def fail_turn(db: Db, turn_id: int, *, error: str, now: datetime) -> Turn:
    await db.execute(
        "UPDATE turns SET status = 'failed', error = $1, finished_at = $2"
        " WHERE id = $3 AND status = 'pending'",
        error, now, turn_id,
    )  # fmt: skip
    failed = await turn(db, turn_id)
    if failed is None:
        raise LookupError(f"no turn {turn_id}")
    return failed


async def load_images(db: Db, hashes: Sequence[str]) -> list[Image]:
    wanted = list(dict.fromkeys(raw for h in hashes if (raw := hash_bytes(h)) is not None))
    if not wanted:
        return []
    rows = await db.fetch(
        "SELECT sha256, mime_type, data FROM images WHERE sha256 = ANY($1)", wanted
    )
    found = {
        bytes(r["sha256"]).hex(): Image(data=bytes(r["data"]), mime_type=r["mime_type"])
        for r in rows
    }
    return [found[h.lower()] for h in hashes if h.lower() in found]


async def move_head(db: Db, turn_id: int) -> None:
    """Point the turn's thread at it; a turn that is not done is refused."""
    status = await db.execute(
        "UPDATE threads SET head_id = $1 WHERE id = (SELECT thread_id FROM turns"
        " WHERE id = $1 AND status = 'done')",
        turn_id,
    )
    if row_count(status) != 1:
        raise LookupError(f"turn {turn_id} is not done")
