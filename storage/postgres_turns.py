"""A turn's two writes in PostgreSQL: started pending with its inputs, finished with its outputs.

Both run on every job, so each is as few round trips as its checks allow: a check and the
change it guards are one statement wherever SQL can say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import asyncpg

from bot.models import Image, Turn, TurnStatus, Usage
from storage.ledger import ledger_size
from storage.postgres_queries import Db
from storage.postgres_rows import INPUT, OUTPUT, TURN_COLUMNS, images_of, turn_from_record
from storage.postgres_usage import ADD_TO_LINE, LINE_KEY, Spent


async def insert_turn(
    db: Db,
    thread_id: int,
    *,
    parent_id: int | None,
    user: str,
    prompt: str,
    ratio: str | None,
    model: str,
    owner: str,
    lease_until: datetime,
    now: datetime,
    size: str | None,
) -> tuple[Turn, str]:
    """A pending turn numbered next in its thread, and the thread's platform; its images are
    attached apart. The thread's row stays locked: its turns are numbered one at a time."""
    try:
        row = await db.fetchrow(
            "WITH counted AS (UPDATE threads SET turn_count = turn_count + 1, pruned = false"
            " WHERE id = $1 RETURNING id, turn_count, platform)"
            " INSERT INTO turns (thread_id, number, parent_id, platform, user_id, model, ratio,"
            " created_at, prompt, status, owner, lease_until, size)"
            " SELECT id, turn_count, $2, platform, $3, $4, $5, $6, $7, 'pending', $8, $9, $10"
            " FROM counted RETURNING id, number, platform",
            thread_id, parent_id, user, model, ratio, now, prompt, owner, lease_until, size,
        )  # fmt: skip
    except asyncpg.ForeignKeyViolationError as exc:
        raise LookupError(f"no parent turn {parent_id}") from exc
    if row is None:
        raise LookupError(f"no thread {thread_id}")
    started = Turn(
        id=row["id"], thread_id=thread_id, number=row["number"], parent_id=parent_id,
        user=user, prompt=prompt, ratio=ratio, model=model, inputs=(), outputs=(),
        status=TurnStatus.PENDING, created_at=now, size=size,
    )  # fmt: skip
    return started, str(row["platform"])


async def attach_inputs(db: Db, turn: Turn, inputs: Sequence[Image]) -> Turn:
    await attach_images(db, turn.id, role=INPUT, images=inputs)
    return replace(turn, inputs=tuple(i.sha256 for i in inputs))


async def attach_images(db: Db, turn_id: int, *, role: str, images: Sequence[Image]) -> None:
    """Store images once per content hash and list them, in order, on a turn."""
    if not images:
        return
    hashes = [bytes.fromhex(i.sha256) for i in images]
    # Only the bytes the table lacks are sent: an input used again is megabytes not copied.
    stored = {
        bytes(row["sha256"])
        for row in await db.fetch("SELECT sha256 FROM images WHERE sha256 = ANY($1)", hashes)
    }
    new = {h: i for h, i in zip(hashes, images, strict=True) if h not in stored}
    for sha256, image in new.items():  # a turn has one or two: executemany was no faster
        await db.execute(
            "INSERT INTO images (sha256, mime_type, size, data) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT DO NOTHING",
            sha256, image.mime_type, len(image.data), image.data,
        )  # fmt: skip
    await db.execute(
        "INSERT INTO turn_images (turn_id, role, position, sha256)"
        " SELECT $1, $2, p.position - 1, p.sha256 FROM unnest($3::bytea[])"
        " WITH ORDINALITY AS p (sha256, position)",
        turn_id, role, hashes,
    )  # fmt: skip


async def finish_turn(
    db: Db,
    turn_id: int,
    *,
    owner: str,
    outputs: Sequence[Image],
    text: str,
    usage: Usage,
    parts_json: str,
    cost_usd: float,
    now: datetime,
    head: bool,
    possibly_billed: int,
) -> tuple[Turn, str] | None:
    """Mark the owner's turn done, unless it is done already: the turn and its status before
    (pending, or failed by another process), or None when there is no such turn to finish."""
    # The sub-select locks the row and reads its status before this change: a fail_expired
    # racing this statement waits for it, then finds the turn done.
    row = await db.fetchrow(
        "UPDATE turns AS t SET status = 'done', text = $1, parts_json = $2, finished_at = $3,"
        " input_tokens = $4, output_tokens = $5, total_tokens = $6, images = $7, error = NULL,"
        " lease_until = NULL"
        " FROM (SELECT id, status FROM turns WHERE id = $8 FOR UPDATE) AS before"
        " WHERE t.id = $8 AND before.id = $8 AND t.owner = $9 AND before.status <> 'done'"
        f" RETURNING before.status AS was, {TURN_COLUMNS}, {images_of(INPUT)},"
        " ARRAY[]::bytea[] AS outputs",
        text, parts_json, now, usage.input_tokens, usage.output_tokens, usage.total_tokens,
        usage.images, turn_id, owner,
    )  # fmt: skip
    if row is None:
        return None
    await attach_images(db, turn_id, role=OUTPUT, images=outputs)
    done = replace(turn_from_record(row), outputs=tuple(i.sha256 for i in outputs))
    spent = Spent(len(outputs), usage, cost_usd, possibly_billed)
    await _count_usage(db, done, spent, now=now, head=head)
    return done, str(row["was"])


async def _count_usage(db: Db, turn: Turn, spent: Spent, *, now: datetime, head: bool) -> None:
    """Add a finished turn to its day's ledger line, under its model and size; with head,
    make it its thread's head."""
    await db.execute(
        "WITH moved AS (UPDATE threads SET head_id = $10 WHERE id = $9 AND $11)"
        " INSERT INTO usage_ledger AS u (platform, user_id, day, workspace, model, size, jobs,"
        " images, input_tokens, output_tokens, cost_usd, possibly_billed)"
        " SELECT platform, $1, $2, workspace, $3, $4, 1, $5, $6, $7, $8, $12"
        " FROM threads WHERE id = $9"
        f" ON CONFLICT {LINE_KEY} DO UPDATE SET {ADD_TO_LINE}",
        turn.user, now.date(), turn.model, ledger_size(turn.size), spent.images,
        spent.usage.input_tokens, spent.usage.output_tokens, spent.cost_usd, turn.thread_id,
        turn.id, head, spent.possibly_billed,
    )  # fmt: skip
