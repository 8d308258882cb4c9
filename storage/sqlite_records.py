"""Message links, claimed events, job counts and retention in SQL, on the connection's thread."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from bot.models import Turn
from storage.sqlite_queries import chunks, turns_where
from storage.sqlite_rows import from_micros, placeholders, to_micros


def link_message(db: sqlite3.Connection, turn_id: int, *, platform: str, message_id: str) -> None:
    try:
        db.execute(
            "INSERT OR REPLACE INTO messages (platform, message_id, turn_id) VALUES (?, ?, ?)",
            (platform, message_id, turn_id),
        )
    except sqlite3.IntegrityError as exc:
        raise LookupError(f"no turn {turn_id}") from exc


def turn_for_message(db: sqlite3.Connection, *, platform: str, message_id: str) -> Turn | None:
    found = turns_where(
        db,
        "t.id = (SELECT turn_id FROM messages WHERE platform = ? AND message_id = ?)",
        (platform, message_id),
    )
    return found[0] if found else None


def message_for_turn(db: sqlite3.Connection, turn_id: int, *, platform: str) -> str | None:
    rows = db.execute(
        "SELECT message_id FROM messages WHERE turn_id = ? AND platform = ? LIMIT 1",
        (turn_id, platform),
    ).fetchall()
    return str(rows[0][0]) if rows else None


def jobs_since(db: sqlite3.Connection, *, platform: str, user: str, since: datetime) -> int:
    (count,) = db.execute(
        "SELECT count(*) FROM turns WHERE platform = ? AND user_id = ?"
        " AND created_at >= ? AND status <> 'failed'",
        (platform, user, to_micros(since)),
    ).fetchall()[0]
    return int(count)


def first_job_since(
    db: sqlite3.Connection, *, platform: str, user: str, since: datetime
) -> datetime | None:
    (first,) = db.execute(
        "SELECT min(created_at) FROM turns WHERE platform = ? AND user_id = ?"
        " AND created_at >= ? AND status <> 'failed'",
        (platform, user, to_micros(since)),
    ).fetchall()[0]
    return None if first is None else from_micros(first)


def prune_batch(db: sqlite3.Connection, *, before: datetime, size: int) -> int:
    """Delete up to size turns created before a moment, and what only they referred to."""
    old = db.execute(
        "SELECT id, thread_id FROM turns WHERE created_at < ? ORDER BY created_at LIMIT ?",
        (to_micros(before), size),
    ).fetchall()
    if not old:
        return 0
    ids = [row[0] for row in old]
    marks = placeholders(len(ids))
    hashes = [
        row[0]
        for row in db.execute(
            f"SELECT DISTINCT sha256 FROM turn_images WHERE turn_id IN ({marks})", ids
        ).fetchall()
    ]
    # Foreign keys cascade to turn_images and messages, and set to NULL the parent_id of
    # younger children and the head_id of threads pointing at a deleted turn.
    db.execute(f"DELETE FROM turns WHERE id IN ({marks})", ids)
    for chunk in chunks(hashes):
        db.execute(
            f"DELETE FROM images WHERE sha256 IN ({placeholders(len(chunk))}) AND NOT EXISTS"
            " (SELECT 1 FROM turn_images AS i WHERE i.sha256 = images.sha256)",
            chunk,
        )
    thread_ids = sorted({row[1] for row in old})
    db.execute(
        "UPDATE threads SET"
        " head_id = (SELECT max(t.id) FROM turns AS t"
        " WHERE t.thread_id = threads.id AND t.status = 'done'),"
        " pruned = NOT EXISTS (SELECT 1 FROM turns AS t WHERE t.thread_id = threads.id)"
        f" WHERE head_id IS NULL AND id IN ({placeholders(len(thread_ids))})",
        thread_ids,
    )
    return len(ids)


def forget_events(db: sqlite3.Connection, *, before: datetime) -> int:
    return db.execute("DELETE FROM events WHERE claimed_at < ?", (to_micros(before),)).rowcount


def probe_write(db: sqlite3.Connection, now: int) -> None:
    """Rewrite the health row: a real page write, so a full disk fails here."""
    db.execute(
        "INSERT INTO health (id, written_at) VALUES (1, ?) "
        "ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at",
        (now,),
    )
