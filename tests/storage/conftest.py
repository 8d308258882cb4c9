"""Fixtures of the store tests: a clock moved by hand, and the contract's store on each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from storage.base import Store
from storage.memory import MemoryStore
from storage.postgres import PostgresStore
from storage.sqlite import SqliteStore
from tests.support.postgres import drop_database, empty_tables, migrated_database
from tests.support.store import Clock

BACKENDS = ("sqlite", "memory", "postgres")
"""Every Store implementation: each one must pass the whole contract (test_contract_*.py)."""


class PostgresDatabase:
    """A throwaway database of one test, and the stores opened on it (closed at its end)."""

    def __init__(self, dsn: str, clock: Clock) -> None:
        self.dsn = dsn
        self._clock = clock
        self.stores: list[PostgresStore] = []

    def store(self) -> PostgresStore:
        """A new, unopened store on the database (as another process would have one)."""
        made = PostgresStore(self.dsn, clock=self._clock)
        self.stores.append(made)
        return made


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def postgres_session() -> AsyncIterator[str]:
    """The DSN of one migrated database for the session, dropped at its end."""
    dsn = await migrated_database()
    yield dsn
    await drop_database(dsn)


@pytest.fixture
async def postgres(postgres_session: str, clock: Clock) -> AsyncIterator[PostgresDatabase]:
    """The session's database, emptied for this test (a new database costs several times as
    much on a busy machine); the stores opened on it are closed at the end."""
    await empty_tables(postgres_session)
    database = PostgresDatabase(postgres_session, clock)
    yield database
    for store in database.stores:
        await store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def unopened_store(
    backend: str, tmp_path: Path, clock: Clock, request: pytest.FixtureRequest
) -> Iterator[Store]:
    """A store of the backend under test, not yet opened (SQLite: a real file under tmp_path;
    PostgreSQL: a database of its own on the TEST_POSTGRES_URL server)."""
    if backend == "sqlite":
        yield SqliteStore(tmp_path / "data" / "bot.db", clock=clock)
    elif backend == "memory":
        yield MemoryStore(clock=clock)
    elif backend == "postgres":
        # Asked for here, not as a parameter: the other backends never touch the server.
        database: PostgresDatabase = request.getfixturevalue("postgres")
        yield database.store()
    else:
        raise ValueError(backend)


@pytest.fixture
async def store(unopened_store: Store) -> AsyncIterator[Store]:
    await unopened_store.open()
    yield unopened_store
    await unopened_store.close()
