"""A database written before sizes, possibly billed calls and budgets is upgraded with its rows.

The old schema is made here from the migrations as they were (SQLite version 3, PostgreSQL
version 1) and filled by plain SQL, as that version of the bot wrote it; then stores of the
current version open it, several at once, as processes starting together would.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import asyncpg
import pytest

from bot.models import Budget, BudgetScope, ThreadKey, TurnStatus, UsageTotals
from storage import postgres_schema, sqlite_schema
from storage.base import Store
from storage.postgres import PostgresStore
from storage.sqlite import SqliteStore
from storage.sqlite_rows import to_micros
from tests.support.postgres import throwaway_database
from tests.support.store import MODEL, START, Clock, done_turn

KEY = ThreadKey("slack", "T1", "C1", "1700000000.000100")
SQLITE_BEFORE = 3
POSTGRES_BEFORE = 1

_THREAD = "INSERT INTO threads (platform, workspace, created_at, turn_count) VALUES (?, ?, ?, 1)"
_KEY = (
    "INSERT INTO thread_keys (platform, workspace, channel, thread, thread_id, is_alias)"
    " VALUES (?, ?, ?, ?, 1, false)"
)
_TURN = (
    "INSERT INTO turns (thread_id, number, platform, user_id, status, model, created_at,"
    " images, prompt, text, parts_json) VALUES (1, 1, 'slack', 'U1', 'done', ?, ?, 1,"
    " 'a banana', 'here', '[]')"
)
_LEDGER = (
    "INSERT INTO usage_ledger (platform, user_id, day, workspace, model, jobs, images,"
    " input_tokens, output_tokens, cost_usd) VALUES ('slack', 'U1', ?, 'T1', ?, 2, 2, 10, 20,"
    " 0.078)"
)


def _numbered(sql: str) -> str:
    """The statement with PostgreSQL's $1, $2 ... for SQLite's ?."""
    parts = sql.split("?")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]


async def _check_upgraded(stores: list[Store]) -> None:
    """What the old rows must look like now, and that the new columns and table work."""
    await asyncio.gather(*(store.open() for store in stores))
    store = stores[0]
    thread = await store.get_thread(KEY)
    assert thread is not None and thread.turn_count == 1
    old = await store.get_turn(1)
    assert old is not None
    assert (old.status, old.prompt, old.model, old.size) == (
        TurnStatus.DONE,
        "a banana",
        MODEL,
        None,
    )
    totals = await store.usage_totals(platform="slack", user="U1", since=START.date())
    assert (totals.jobs, totals.images, totals.input_tokens, totals.possibly_billed) == (
        2,
        2,
        10,
        0,
    )
    assert [(s.model, s.size, s.images) for s in totals.by_size] == [(MODEL, "1K", 2)]

    await done_turn(store, thread.id, size="4K", cost_usd=0.24, possibly_billed=1)
    await done_turn(store, thread.id, cost_usd=0.039)  # no size: the old line goes on
    await stores[-1].set_budget(
        platform="slack", workspace="T1", scope=BudgetScope.USER, subject="U1", monthly_usd=5.0
    )
    totals = await stores[-1].usage_totals(platform="slack", workspace="T1", since=START.date())
    assert [(s.model, s.size, s.images) for s in totals.by_size] == [
        (MODEL, "4K", 1),
        (MODEL, "1K", 3),
    ]
    assert totals.cost_usd == pytest.approx(0.078 + 0.24 + 0.039)
    assert (totals.jobs, totals.possibly_billed) == (4, 1)
    assert await store.budgets(platform="slack", workspace="T1") == [
        Budget("slack", "T1", BudgetScope.USER, "U1", 5.0)
    ]
    for each in stores:
        await each.close()


# -- SQLite --------------------------------------------------------------------------


def _old_sqlite(path: Path, *, rows: bool = True) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        for migration in sqlite_schema.MIGRATIONS[:SQLITE_BEFORE]:
            for statement in migration:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SQLITE_BEFORE}")
        if not rows:
            return
        db.execute(_THREAD, ("slack", "T1", to_micros(START)))
        db.execute(_KEY, (KEY.platform, KEY.workspace, KEY.channel, KEY.thread))
        db.execute(_TURN, (MODEL, to_micros(START)))
        db.execute(_LEDGER, (START.date().isoformat(), MODEL))


async def test_an_old_sqlite_file_is_upgraded_once_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    await asyncio.to_thread(_old_sqlite, path)
    clock = Clock()

    await _check_upgraded([SqliteStore(path, clock=clock) for _ in range(3)])

    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == sqlite_schema.SCHEMA_VERSION
        key = [row[1] for row in db.execute("PRAGMA table_info(usage_ledger)") if row[5]]
        assert key == ["platform", "user_id", "day", "workspace", "model", "size"]
        indexes = {row[1] for row in db.execute("PRAGMA index_list(usage_ledger)")}
        assert "usage_by_workspace" in indexes
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        assert "usage_ledger_v4" not in tables and "budgets" in tables


async def test_an_empty_old_ledger_is_upgraded_too(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    await asyncio.to_thread(_old_sqlite, path, rows=False)
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.usage_totals(platform="slack", since=START.date()) == UsageTotals()
    finally:
        await store.close()


# -- PostgreSQL ------------------------------------------------------------------------


@pytest.fixture
async def old_postgres() -> AsyncIterator[str]:
    """A database at schema version 1, holding one thread, turn and ledger line."""
    async with throwaway_database() as dsn:
        db = await asyncpg.connect(dsn)
        try:
            await db.execute(
                f"CREATE TABLE {postgres_schema.VERSIONS_TABLE} (version integer PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for number in range(1, POSTGRES_BEFORE + 1):
                for statement in postgres_schema.MIGRATIONS[number - 1]:
                    await db.execute(statement)
                await db.execute(
                    f"INSERT INTO {postgres_schema.VERSIONS_TABLE} (version) VALUES ($1)", number
                )
            await db.execute(_numbered(_THREAD), "slack", "T1", START)
            await db.execute(_numbered(_KEY), KEY.platform, KEY.workspace, KEY.channel, KEY.thread)
            await db.execute(_numbered(_TURN), MODEL, START)
            await db.execute(_numbered(_LEDGER), START.date(), MODEL)
        finally:
            await db.close()
        yield dsn


async def test_an_old_postgres_schema_is_upgraded_once_with_its_rows(old_postgres: str) -> None:
    clock = Clock()

    await _check_upgraded([PostgresStore(old_postgres, clock=clock) for _ in range(3)])

    db = await asyncpg.connect(old_postgres)
    try:
        versions = await db.fetch(f"SELECT version FROM {postgres_schema.VERSIONS_TABLE}")
        assert sorted(row["version"] for row in versions) == list(
            range(1, postgres_schema.SCHEMA_VERSION + 1)
        )
        key = await db.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'usage_ledger'::regclass AND contype = 'p'"
        )
        assert key == "PRIMARY KEY (platform, user_id, day, workspace, model, size)"
        # The default only filled the old rows: a write that names no size is refused.
        with pytest.raises(asyncpg.NotNullViolationError):
            await db.execute(_numbered(_LEDGER), START.date(), "another-model")
    finally:
        await db.close()
