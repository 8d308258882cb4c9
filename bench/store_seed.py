"""A store with many threads and turns, made fast: rows shaped by the store, written in bulk.

One real thread is written through SqliteStore first; its rows are the templates, so the bulk
rows carry exactly what the store writes (microsecond times, BLOB hashes, compact parts),
only with their own ids, prompts, users and times. The bulk goes in one transaction.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from bot.models import Image, ThreadKey, Turn, Usage
from storage.base import Store
from storage.sqlite import SqliteStore

TEAM, CHANNEL = "T0001", "C0001"
USERS = 1_000
START_MICROS = 1_767_225_600_000_000  # 2026-01-01 UTC
STEP_MICROS = 1_000_000
PROMPT_WORDS = (
    "make",
    "the",
    "sky",
    "warmer",
    "add",
    "a",
    "small",
    "red",
    "boat",
    "on",
    "lake",
    "softer",
    "light",
    "more",
    "detail",
    "in",
    "trees",
    "less",
    "contrast",
    "evening",
)

TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e0a0e6b30000000049454e44ae426082"
)
TINY = Image(TINY_PNG, "image/png")
PARTS = '[{"inlineData":{"mimeType":"image/png","sha256":"%s"}}]'


def thread_key(number: int) -> ThreadKey:
    return ThreadKey("slack", TEAM, CHANNEL, f"{1_767_225_600 + number}.000100")


def prompt(number: int) -> str:
    """A refinement instruction of six to twelve words, different from turn to turn."""
    words = [PROMPT_WORDS[(number * 7 + i * 3) % len(PROMPT_WORDS)] for i in range(6 + number % 7)]
    return " ".join(words)


OWNER = "bench"


async def append_turn(
    store: Store,
    thread_id: int,
    *,
    parent_id: int | None,
    user: str,
    prompt: str,
    ratio: str | None,
    model: str,
) -> Turn:
    """One turn as a job appends it: pending, then done with the shared tiny image."""
    turn = await store.start_turn(
        thread_id,
        parent_id=parent_id,
        user=user,
        prompt=prompt,
        ratio=ratio,
        model=model,
        inputs=(),
        owner=OWNER,
        lease=30.0,
    )
    return await store.finish_turn(
        turn.id,
        owner=OWNER,
        outputs=(TINY,),
        text="",
        usage=Usage(310, 1290, 1600, 1),
        parts_json=PARTS % TINY.sha256,
        cost_usd=0.039,
    )


async def write_template(path: Path) -> None:
    """One thread of two turns through the store itself, result messages linked."""
    store = SqliteStore(path)
    await store.open()
    try:
        thread = await store.create_thread(thread_key(0))
        parent = None
        for number in (1, 2):
            turn = await append_turn(
                store,
                thread.id,
                parent_id=parent,
                user="U000000",
                prompt=prompt(number),
                ratio="1:1",
                model="gemini-2.5-flash-image",
            )
            await store.link_message(turn.id, platform="slack", message_id=f"{CHANNEL}:{number}")
            parent = turn.id
    finally:
        await store.close()


def _copy(
    db: sqlite3.Connection,
    table: str,
    template: str,
    overrides: dict[str, str],
    count: int,
    params: dict[str, int],
) -> None:
    """Insert `count` copies of a template row, some columns computed from n (1..count)."""
    columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
    values = ", ".join(overrides.get(column, f"t.{column}") for column in columns)
    db.execute(
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count})"
        f" INSERT INTO {table} ({', '.join(columns)})"
        f" SELECT {values} FROM n, (SELECT * FROM {table} WHERE {template} LIMIT 1) AS t",
        params,
    )


def bulk_fill(path: Path, *, threads: int, turns: int) -> None:
    """Add `threads` threads of turns/threads turns each, all in SQL, in one transaction.

    The secondary indexes are dropped and built again afterwards (a sort beats a million
    scattered inserts). No ANALYZE: the store never takes statistics, so neither does this.
    """
    per_thread = turns // threads
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous = OFF")  # setting the stage only; measured writes sync
        indexes = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall()
        params = {
            "threads": db.execute("SELECT max(id) FROM threads").fetchone()[0],
            "turns": db.execute("SELECT max(id) FROM turns").fetchone()[0],
            "per": per_thread,
            "start": START_MICROS,
            "step": STEP_MICROS,
            "stamp": 1_767_225_600,
            "users": USERS,
        }
        db.execute("BEGIN")
        for name, _ in indexes:
            db.execute(f"DROP INDEX {name}")
        _fill(db, threads, turns=threads * per_thread, params=params)
        for _, sql in indexes:
            db.execute(sql)
        db.execute("COMMIT")
    finally:
        db.close()
    # The bulk is on disk before anything is timed: its write-back must not land on a commit.
    with path.open("rb") as written:
        os.fsync(written.fileno())


# A turn's prompt: a slice of this text, 30 to 80 characters, starting somewhere different.
_TEXT = " ".join(PROMPT_WORDS * 8)


def _fill(db: sqlite3.Connection, threads: int, *, turns: int, params: dict[str, int]) -> None:
    thread = "(:threads + (i - 1) / :per + 1)"
    _copy(
        db,
        "threads",
        "1",
        {
            "id": ":threads + i",
            "created_at": ":start + (i - 1) * :per * :step",
            "head_id": ":turns + i * :per",
            "turn_count": ":per",
        },
        threads,
        params,
    )
    _copy(
        db,
        "thread_keys",
        "is_alias = 0",
        {
            "thread": "printf('%d.000100', :stamp + i)",
            "thread_id": ":threads + i",
        },
        threads,
        params,
    )
    _copy(
        db,
        "turns",
        "number = 2",
        {
            "id": ":turns + i",
            "thread_id": thread,
            "number": "(i - 1) % :per + 1",
            "parent_id": "CASE WHEN (i - 1) % :per = 0 THEN NULL ELSE :turns + i - 1 END",
            "user_id": f"printf('U%06d', {thread} % :users)",
            "prompt": f"substr('{_TEXT}', 1 + (i * 37) % 200, 30 + (i * 13) % 51)",
            "created_at": ":start + i * :step",
            "finished_at": ":start + i * :step + 9000000",
        },
        turns,
        params,
    )
    _copy(
        db,
        "turn_images",
        "role = 'output'",
        {
            "turn_id": ":turns + i",
            "position": "0",
        },
        turns,
        params,
    )
    _copy(
        db,
        "messages",
        "1",
        {
            "message_id": "printf('C0001:%d.000200', :stamp + i)",
            "turn_id": ":turns + i",
        },
        turns,
        params,
    )
