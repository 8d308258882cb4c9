"""Threads, turns and images in SQL: functions run whole on the connection's own thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bot.models import Image, Thread, ThreadKey, Turn, TurnStatus, Usage
from storage import sqlite_usage as usage_ledger
from storage.hashes import hash_bytes
from storage.sqlite_rows import (
    INPUT,
    OUTPUT,
    TURN_JOIN,
    TURN_ORDER,
    TURN_SELECT,
    Row,
    placeholders,
    thread_from_row,
    to_micros,
    turns_from_rows,
)

IN_CHUNK = 500
"""Values per IN (...) list, well below SQLite's limit on bound parameters."""


def chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


def first_row(db: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Row | None:
    """The first row of a statement run to completion (RETURNING statements included)."""
    rows = db.execute(sql, params).fetchall()
    return rows[0] if rows else None


def _key_values(key: ThreadKey) -> tuple[str, str, str, str]:
    return (key.platform, key.workspace, key.channel, key.thread)


# -- threads -----------------------------------------------------------------------


def thread_by_key(db: sqlite3.Connection, key: ThreadKey) -> Thread | None:
    row = first_row(
        db,
        "SELECT h.id, h.head_id, h.turn_count, h.pruned, h.created_at"
        " FROM thread_keys AS k JOIN threads AS h ON h.id = k.thread_id"
        " WHERE k.platform = ? AND k.workspace = ? AND k.channel = ? AND k.thread = ?",
        _key_values(key),
    )
    return thread_from_row(row, key) if row else None


def create_thread(db: sqlite3.Connection, key: ThreadKey, *, now: datetime) -> Thread:
    existing = thread_by_key(db, key)
    if existing is not None:
        return existing
    (thread_id,) = db.execute(
        "INSERT INTO threads (platform, workspace, created_at) VALUES (?, ?, ?) RETURNING id",
        (key.platform, key.workspace, to_micros(now)),
    ).fetchall()[0]
    _insert_key(db, thread_id, key, is_alias=False)
    return Thread(id=thread_id, key=key, head_id=None, created_at=now)


def add_alias(db: sqlite3.Connection, thread_id: int, *, key: ThreadKey) -> None:
    owner = first_row(
        db,
        "SELECT thread_id FROM thread_keys"
        " WHERE platform = ? AND workspace = ? AND channel = ? AND thread = ?",
        _key_values(key),
    )
    if owner is not None and owner[0] == thread_id:
        return
    if owner is not None:
        raise ValueError(f"{key} already names thread {owner[0]}")
    try:
        _insert_key(db, thread_id, key, is_alias=True)
    except sqlite3.IntegrityError as exc:
        raise LookupError(f"no thread {thread_id}") from exc


def _insert_key(db: sqlite3.Connection, thread_id: int, key: ThreadKey, *, is_alias: bool) -> None:
    db.execute(
        "INSERT INTO thread_keys (platform, workspace, channel, thread, thread_id, is_alias)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (*_key_values(key), thread_id, int(is_alias)),
    )


def first_keys(
    db: sqlite3.Connection, thread_ids: Sequence[int], *, prefer_alias: bool = False
) -> dict[int, ThreadKey]:
    """The key each thread was created under, or with prefer_alias the one it lives under now.

    An alias is a platform thread made after the first turn (a Discord thread started from the
    result message): that is where the conversation went on.
    """
    keys: dict[int, ThreadKey] = {}
    wanted = "" if prefer_alias else "is_alias = 0 AND "
    for chunk in chunks(thread_ids):
        rows = db.execute(
            "SELECT thread_id, platform, workspace, channel, thread FROM thread_keys"
            f" WHERE {wanted}thread_id IN ({placeholders(len(chunk))}) ORDER BY is_alias",
            chunk,
        )
        keys.update((row[0], ThreadKey(*row[1:])) for row in rows)  # later rows: aliases win
    return keys


# -- turns -------------------------------------------------------------------------


def turns_where(db: sqlite3.Connection, condition: str, params: Sequence[Any]) -> list[Turn]:
    """Turns matching a condition on `t`, with their image hashes, by id."""
    rows = db.execute(
        f"{TURN_SELECT} FROM turns AS t {TURN_JOIN} WHERE {condition} ORDER BY t.id, {TURN_ORDER}",
        params,
    )
    return turns_from_rows(rows)


def turn(db: sqlite3.Connection, turn_id: int) -> Turn | None:
    found = turns_where(db, "t.id = ?", (turn_id,))
    return found[0] if found else None


def ancestry(db: sqlite3.Connection, turn_id: int, *, limit: int) -> list[Turn]:
    """The turn and up to limit-1 done ancestors, oldest first."""
    # The walk up the tree stops as soon as enough done ancestors are found, so its cost
    # is bounded by limit, not by the depth of the thread.
    rows = db.execute(
        "WITH RECURSIVE chain (id, parent_id, depth, found) AS ("
        " SELECT id, parent_id, 0, 1 FROM turns WHERE id = ?"
        " UNION ALL"
        " SELECT p.id, p.parent_id, c.depth + 1, c.found + (p.status = 'done')"
        " FROM chain AS c JOIN turns AS p ON p.id = c.parent_id WHERE c.found < ?"
        f") {TURN_SELECT} FROM chain AS c JOIN turns AS t ON t.id = c.id {TURN_JOIN}"
        f" WHERE c.depth = 0 OR t.status = 'done' ORDER BY c.depth DESC, {TURN_ORDER}",
        (turn_id, limit),
    )
    return turns_from_rows(rows)


def start_turn(
    db: sqlite3.Connection,
    thread_id: int,
    *,
    parent_id: int | None,
    user: str,
    prompt: str,
    ratio: str | None,
    model: str,
    inputs: Sequence[Image],
    owner: str,
    lease_until: int,
    now: datetime,
    size: str | None,
) -> Turn:
    counted = first_row(
        db,
        "UPDATE threads SET turn_count = turn_count + 1, pruned = 0 WHERE id = ?"
        " RETURNING turn_count, platform",
        (thread_id,),
    )
    if counted is None:
        raise LookupError(f"no thread {thread_id}")
    number, platform = counted
    try:
        (turn_id,) = db.execute(
            "INSERT INTO turns (thread_id, number, parent_id, platform, user_id, model, ratio,"
            " created_at, prompt, status, owner, lease_until, size)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) RETURNING id",
            (thread_id, number, parent_id, platform, user, model, ratio, to_micros(now), prompt,
             owner, lease_until, size),
        ).fetchall()[0]  # fmt: skip
    except sqlite3.IntegrityError as exc:
        raise LookupError(f"no parent turn {parent_id}") from exc
    _attach_images(db, turn_id, role=INPUT, images=inputs)
    return Turn(
        id=turn_id, thread_id=thread_id, number=number, parent_id=parent_id, user=user,
        prompt=prompt, ratio=ratio, model=model, inputs=tuple(i.sha256 for i in inputs),
        outputs=(), status=TurnStatus.PENDING, created_at=now, size=size,
    )  # fmt: skip


def _attach_images(
    db: sqlite3.Connection, turn_id: int, *, role: str, images: Sequence[Image]
) -> None:
    """Store images once per content hash and list them, in order, on a turn."""
    hashes = [bytes.fromhex(i.sha256) for i in images]
    db.executemany(
        "INSERT OR IGNORE INTO images (sha256, mime_type, size, data) VALUES (?, ?, ?, ?)",
        [(h, i.mime_type, len(i.data), i.data) for h, i in zip(hashes, images, strict=True)],
    )
    db.executemany(
        "INSERT INTO turn_images (turn_id, role, position, sha256) VALUES (?, ?, ?, ?)",
        [(turn_id, role, position, h) for position, h in enumerate(hashes)],
    )


def finish_turn(
    db: sqlite3.Connection,
    turn_id: int,
    *,
    outputs: Sequence[Image],
    text: str,
    usage: Usage,
    parts_json: str,
    cost_usd: float,
    now: datetime,
    head: bool,
    possibly_billed: int,
) -> Turn:
    """Mark a turn done whatever its state; the caller has checked that it may."""
    done = first_row(
        db,
        "UPDATE turns SET status = 'done', text = ?, parts_json = ?, finished_at = ?,"
        " input_tokens = ?, output_tokens = ?, total_tokens = ?, images = ?, error = NULL,"
        " lease_until = NULL WHERE id = ? RETURNING thread_id, user_id, model, size",
        (text, parts_json, to_micros(now), usage.input_tokens, usage.output_tokens,
         usage.total_tokens, usage.images, turn_id),
    )  # fmt: skip
    if done is None:
        raise LookupError(f"no turn {turn_id}")
    thread_id, user, model, size = done
    _attach_images(db, turn_id, role=OUTPUT, images=outputs)
    if head:
        db.execute("UPDATE threads SET head_id = ? WHERE id = ?", (turn_id, thread_id))
    usage_ledger.count_turn(
        db, thread_id, user=user, model=model, size=size, images=len(outputs), usage=usage,
        cost_usd=cost_usd, possibly_billed=possibly_billed, now=now,
    )  # fmt: skip
    (finished,) = turns_where(db, "t.id = ?", (turn_id,))
    return finished


def fail_turn(db: sqlite3.Connection, turn_id: int, *, error: str, now: datetime) -> Turn:
    db.execute(
        "UPDATE turns SET status = 'failed', error = ?, finished_at = ?"
        " WHERE id = ? AND status = 'pending'",
        (error, to_micros(now), turn_id),
    )
    failed = turn(db, turn_id)
    if failed is None:
        raise LookupError(f"no turn {turn_id}")
    return failed


def load_images(db: sqlite3.Connection, hashes: Sequence[str]) -> list[Image]:
    wanted = list(dict.fromkeys(raw for h in hashes if (raw := hash_bytes(h)) is not None))
    found: dict[str, Image] = {}
    for chunk in chunks(wanted):
        rows = db.execute(
            "SELECT sha256, mime_type, data FROM images"
            f" WHERE sha256 IN ({placeholders(len(chunk))})",
            chunk,
        )
        for sha256, mime_type, data in rows:
            found[bytes(sha256).hex()] = Image(data=bytes(data), mime_type=mime_type)
    return [found[h.lower()] for h in hashes if h.lower() in found]


def move_head(db: sqlite3.Connection, turn_id: int) -> None:
    """Point the turn's thread at it; a turn that is not done is refused."""
    moved = db.execute(
        "UPDATE threads SET head_id = ? WHERE id = (SELECT thread_id FROM turns"
        " WHERE id = ? AND status = 'done')",
        (turn_id, turn_id),
    )
    if moved.rowcount != 1:
        raise LookupError(f"turn {turn_id} is not done")
