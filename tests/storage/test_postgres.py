"""What only the PostgreSQL store promises: migrations, refusals, secrets kept, races decided."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.errors import AlreadyHandled, ConfigError
from bot.models import Turn
from storage import postgres_schema
from storage.postgres import PostgresStore
from storage.postgres_connection import describe
from tests.storage.conftest import PostgresDatabase
from tests.support.postgres import dsn_of, throwaway_database
from tests.support.store import LEASE, MODEL, OWNER, Clock, key, new_thread, pending_turn

PASSWORD = "pw-Hunter2-very-secret"


@pytest.fixture
async def empty_dsn() -> AsyncIterator[str]:
    """A database of its own, with no tables at all."""
    async with throwaway_database() as dsn:
        yield dsn


async def _fetch(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    db = await asyncpg.connect(dsn)
    try:
        return list(await db.fetch(sql, *args))
    finally:
        await db.close()


async def _schema(dsn: str) -> list[tuple[str, ...]]:
    """Every column and index of the public schema, to compare before and after."""
    columns = await _fetch(
        dsn,
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'public' ORDER BY 1, 2",
    )
    indexes = await _fetch(
        dsn, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
    )
    return [tuple(row) for row in [*columns, *indexes]]


# -- opening and migrating ----------------------------------------------------------


async def test_migrations_are_applied_once_and_a_reopen_changes_nothing(
    empty_dsn: str, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="storage")
    first = PostgresStore(empty_dsn, clock=clock)
    await first.open()
    thread = await first.create_thread(key("kept"))
    await first.close()
    migrated = [r for r in caplog.records if "migrated" in r.getMessage()]
    assert len(migrated) == postgres_schema.SCHEMA_VERSION
    schema = await _schema(empty_dsn)
    caplog.clear()

    again = PostgresStore(empty_dsn, clock=clock)
    await again.open()
    try:
        assert await again.get_thread(key("kept")) == thread
    finally:
        await again.close()

    assert not [r for r in caplog.records if "migrated" in r.getMessage()]
    assert await _schema(empty_dsn) == schema
    versions = await _fetch(empty_dsn, f"SELECT version FROM {postgres_schema.VERSIONS_TABLE}")
    assert [row["version"] for row in versions] == list(
        range(1, postgres_schema.SCHEMA_VERSION + 1)
    )


async def test_two_processes_opening_a_new_database_at_once_migrate_it_once(
    empty_dsn: str,
) -> None:
    stores = [PostgresStore(empty_dsn) for _ in range(3)]
    await asyncio.gather(*(store.open() for store in stores))
    for store in stores:
        await store.close()
    versions = await _fetch(empty_dsn, f"SELECT version FROM {postgres_schema.VERSIONS_TABLE}")
    assert len(versions) == postgres_schema.SCHEMA_VERSION


async def test_another_programs_database_is_refused_and_left_alone(empty_dsn: str) -> None:
    db = await asyncpg.connect(empty_dsn)
    try:
        await db.execute("CREATE TABLE customers (id integer PRIMARY KEY, name text)")
        await db.execute("INSERT INTO customers VALUES (1, 'Ada')")
    finally:
        await db.close()

    with pytest.raises(ConfigError, match="another program's tables") as refused:
        await PostgresStore(empty_dsn).open()

    assert describe(empty_dsn) in refused.value.user_message
    tables = await _fetch(empty_dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert [row["tablename"] for row in tables] == ["customers"]


async def test_a_database_from_a_newer_version_is_refused(empty_dsn: str) -> None:
    store = PostgresStore(empty_dsn)
    await store.open()
    await store.close()
    newer = postgres_schema.SCHEMA_VERSION + 1
    await _fetch(
        empty_dsn, f"INSERT INTO {postgres_schema.VERSIONS_TABLE} (version) VALUES ($1)", newer
    )

    with pytest.raises(ConfigError, match=f"schema version {newer}, written by a newer"):
        await store.open()
    assert await store.ping() is False


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://bot:{PASSWORD}@127.0.0.1:1/bot",  # nothing listens on port 1
        f"postgresql://bot:{PASSWORD.replace('-', '%2D')}@127.0.0.1:1/bot",
        f"postgresql://127.0.0.1:1/bot?user=bot&password={PASSWORD}",
    ],
    ids=["in the URL", "percent-encoded", "in the query"],
)
async def test_a_failed_connection_names_the_server_but_never_the_password(dsn: str) -> None:
    store = PostgresStore(dsn)  # no I/O before open
    assert PASSWORD not in repr(store)

    with pytest.raises(ConfigError) as failed:
        await store.open()

    shown = "".join(traceback.format_exception(failed.value)) + failed.value.user_message
    assert "127.0.0.1:1/bot" in failed.value.user_message
    assert PASSWORD not in shown and PASSWORD.replace("-", "%2D") not in shown
    assert await store.ping() is False


async def test_a_missing_database_is_a_config_error_without_the_password(
    postgres: PostgresDatabase,
) -> None:
    parts = urlsplit(postgres.dsn)  # the test server trusts it: any password will do
    netloc = f"{parts.username}:{PASSWORD}@{parts.hostname}:{parts.port or 5432}"
    server = urlunsplit(parts._replace(netloc=netloc))
    missing = dsn_of("bot_test_no_such_database", server=server)
    with pytest.raises(ConfigError, match="bot_test_no_such_database") as failed:
        await PostgresStore(missing).open()
    assert PASSWORD not in "".join(traceback.format_exception(failed.value))


# -- times ----------------------------------------------------------------------------


async def test_times_come_back_as_the_clocks_to_the_microsecond(
    postgres: PostgresDatabase, clock: Clock
) -> None:
    clock.advance(microseconds=123_457)
    store = postgres.store()
    await store.open()
    thread = await new_thread(store)
    turn = await pending_turn(store, thread.id)
    stored = await store.get_turn(turn.id)
    assert stored is not None and stored.created_at == turn.created_at == clock.now
    assert stored.created_at is not None and stored.created_at.utcoffset() == timedelta(0)
    found = await store.first_job_since(platform="slack", user="U1", since=clock.now)
    assert found == clock.now


# -- several processes on one database ---------------------------------------------------


@pytest.fixture
async def two(postgres: PostgresDatabase) -> list[PostgresStore]:
    """Two stores on one database, each with its own pool, as two processes have."""
    stores = [postgres.store(), postgres.store()]
    for store in stores:
        await store.open()
    return stores


async def test_concurrent_fail_expired_returns_each_expired_turn_once(
    two: list[PostgresStore], clock: Clock
) -> None:
    one, other = two
    threads = [await new_thread(one, f"t{n}") for n in range(40)]
    started: list[Turn] = []
    for thread in threads:
        started += [await pending_turn(one, thread.id) for _ in range(5)]
    clock.advance(seconds=LEASE + 1)

    rounds = await asyncio.gather(
        *(store.fail_expired(error="lost", platforms=("slack",)) for store in (one, other) * 3)
    )

    reported = [turn.id for found in rounds for turn, _ in found]
    assert sorted(reported) == sorted(turn.id for turn in started)


async def test_concurrent_claims_of_one_event_have_one_winner(two: list[PostgresStore]) -> None:
    for event in range(20):
        claims = [
            store.claim_event(
                platform="slack", event_id=f"Ev{event}", owner=f"host:{n}", lease=LEASE
            )
            for n, store in enumerate(two * 3)
        ]
        assert sorted(await asyncio.gather(*claims)) == [False] * 5 + [True]


async def test_concurrent_lease_acquisitions_have_one_winner(
    two: list[PostgresStore], clock: Clock
) -> None:
    for name in ("discord-shard-0", "retention"):
        takers = [
            store.acquire_lease(name, owner=f"host:{n}", lease=LEASE)
            for n, store in enumerate(two * 3)
        ]
        assert sorted(await asyncio.gather(*takers)) == [False] * 5 + [True]
    clock.advance(seconds=LEASE + 1)
    retaken = await asyncio.gather(
        *(store.acquire_lease("retention", owner="late", lease=LEASE) for store in two)
    )
    assert retaken == [True, True]  # run out, then held by the same owner


async def test_turns_settling_the_same_claim_at_once_store_one(two: list[PostgresStore]) -> None:
    one, other = two
    thread = await new_thread(one)

    async def start(store: PostgresStore, owner: str) -> Turn | AlreadyHandled:
        try:
            return await store.start_turn(
                thread.id, parent_id=None, user="U1", prompt=owner, ratio=None, model=MODEL,
                inputs=(), owner=owner, lease=LEASE, claims=("Ev1",),
            )  # fmt: skip
        except AlreadyHandled as refused:
            return refused

    outcomes = await asyncio.gather(start(one, OWNER), start(other, "host:2:other"))

    assert sorted(type(o).__name__ for o in outcomes) == ["AlreadyHandled", "Turn"]
    after = await one.get_thread(thread.key)
    assert after is not None and after.turn_count == 1
