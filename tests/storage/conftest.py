"""Fixtures of the store tests: a clock moved by hand, and the contract's store on each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.base import Store
from storage.memory import MemoryStore
from storage.sqlite import SqliteStore
from tests.support.store import Clock

BACKENDS = ("sqlite", "memory")
"""Every Store implementation: each one must pass the whole contract (test_contract_*.py)."""


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def unopened_store(backend: str, tmp_path: Path, clock: Clock) -> Store:
    """A store of the backend under test, not yet opened (SQLite: a real file under tmp_path)."""
    if backend == "sqlite":
        return SqliteStore(tmp_path / "data" / "bot.db", clock=clock)
    if backend == "memory":
        return MemoryStore(clock=clock)
    raise ValueError(backend)


@pytest.fixture
async def store(unopened_store: Store) -> AsyncIterator[Store]:
    await unopened_store.open()
    yield unopened_store
    await unopened_store.close()
