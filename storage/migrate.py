"""Moving a SQLite database into PostgreSQL: every row, ids kept, in batches.

The target is migrated to the current schema by PostgresStore first and must hold no
threads yet. The source is opened read-only, so it can be copied while no bot process
writes to it (stop them first: what they write meanwhile is not copied).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from bot.errors import ConfigError
from storage.postgres import PostgresStore
from storage.postgres_connection import describe
from storage.sqlite import SqliteStore
from storage.sqlite_rows import from_micros

logger = logging.getLogger(__name__)

BATCH = 500
"""Rows read and written at a time: a few hundred images at most in memory."""

Convert = Callable[[Sequence[Any]], tuple[Any, ...]]


def _time(value: int | None) -> Any:
    return None if value is None else from_micros(value)


def _blob(value: Any) -> Any:
    return None if value is None else bytes(value)


def _flag(value: int | None) -> Any:
    return None if value is None else bool(value)


def _with(**columns: Callable[[Any], Any]) -> Callable[[Sequence[str]], Convert]:
    """A converter for the named columns; the others are copied as they are."""

    def build(names: Sequence[str]) -> Convert:
        steps = [columns.get(name) for name in names]
        return lambda row: tuple(
            value if step is None else step(value) for step, value in zip(steps, row, strict=True)
        )

    return build


# (table, columns, order, conversions): parents before children, so every reference holds.
_TABLES: tuple[tuple[str, tuple[str, ...], str, Callable[[Sequence[str]], Convert]], ...] = (
    ("threads", ("id", "platform", "workspace", "created_at", "turn_count", "pruned"), "id",
     _with(created_at=_time, pruned=_flag)),
    ("thread_keys", ("platform", "workspace", "channel", "thread", "thread_id", "is_alias"),
     "thread_id, is_alias", _with(is_alias=_flag)),
    ("turns", ("id", "thread_id", "number", "parent_id", "platform", "user_id", "status",
               "model", "ratio", "created_at", "finished_at", "input_tokens", "output_tokens",
               "total_tokens", "images", "prompt", "text", "error", "parts_json", "owner",
               "lease_until", "size"), "id",
     _with(created_at=_time, finished_at=_time, lease_until=_time)),
    ("images", ("sha256", "mime_type", "size", "data"), "rowid", _with(sha256=_blob, data=_blob)),
    ("turn_images", ("turn_id", "role", "position", "sha256"), "turn_id, role, position",
     _with(sha256=_blob)),
    ("messages", ("platform", "message_id", "turn_id"), "turn_id", _with()),
    ("events", ("platform", "event_id", "claimed_at", "owner", "lease_until", "settled"),
     "claimed_at", _with(claimed_at=_time, lease_until=_time, settled=_flag)),
    ("usage_ledger", ("platform", "user_id", "day", "workspace", "model", "size", "jobs",
                      "images", "input_tokens", "output_tokens", "cost_usd", "possibly_billed"),
     "day", _with(day=date.fromisoformat)),
    ("budgets", ("platform", "workspace", "scope", "subject", "monthly_usd"),
     "platform, workspace", _with()),
)  # fmt: skip
_IDENTITIES = (("threads", "id"), ("turns", "id"))


def _read_only(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    uri = f"{path.resolve().as_uri()}?mode=ro"
    return sqlite3.connect(uri, uri=True, check_same_thread=check_same_thread)


def _batches(path: Path, table: str, columns: Sequence[str], order: str) -> Iterator[list[Any]]:
    # Each batch is read from whichever worker thread asyncio.to_thread hands it; the reads
    # never overlap, so one connection may move between threads.
    with closing(_read_only(path, check_same_thread=False)) as db:
        cursor = db.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")
        while rows := cursor.fetchmany(BATCH):
            yield rows


async def _copy_table(
    connection: asyncpg.Connection,
    source: Path,
    table: str,
    columns: Sequence[str],
    order: str,
    convert: Convert,
) -> int:
    batches = _batches(source, table, columns, order)
    copied = 0
    while rows := await asyncio.to_thread(next, batches, None):
        records = [convert(row) for row in rows]
        # COPY writes identity columns as given (like OVERRIDING SYSTEM VALUE): ids are kept.
        await connection.copy_records_to_table(table, records=records, columns=list(columns))
        copied += len(records)
    return copied


async def copy_sqlite_to_postgres(source: Path, dsn: str) -> dict[str, int]:
    """Copy every row of the SQLite store at source into the empty PostgreSQL store at dsn;
    returns the rows copied per table."""
    if not await asyncio.to_thread(source.is_file):
        raise ConfigError(f"There is no SQLite database at {source}.")
    sqlite_store = SqliteStore(source)
    await sqlite_store.open()  # brings the source to the current schema first
    await sqlite_store.close()
    target = PostgresStore(dsn)
    await target.open()
    await target.close()
    connection = await asyncpg.connect(dsn)
    try:
        if await connection.fetchval("SELECT count(*) FROM threads"):
            raise ConfigError(
                f"The PostgreSQL database {describe(dsn)} already holds threads; "
                "copy into a new, empty database."
            )
        return await _copy_all(connection, source)
    finally:
        await connection.close()


async def _copy_all(connection: asyncpg.Connection, source: Path) -> dict[str, int]:
    copied: dict[str, int] = {}
    async with connection.transaction():
        for table, columns, order, converter in _TABLES:
            copied[table] = await _copy_table(
                connection, source, table, columns, order, converter(columns)
            )
            logger.info("copied %d rows of %s", copied[table], table)
        heads = await asyncio.to_thread(_heads, source)
        await connection.executemany("UPDATE threads SET head_id = $2 WHERE id = $1", heads)
        for table, column in _IDENTITIES:
            # The next id goes on from the largest copied, never reusing one.
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                f" coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
            )
    return copied


def _heads(source: Path) -> list[tuple[int, int]]:
    with closing(_read_only(source)) as db:
        rows = db.execute("SELECT id, head_id FROM threads WHERE head_id IS NOT NULL")
        return [(int(thread), int(head)) for thread, head in rows]
