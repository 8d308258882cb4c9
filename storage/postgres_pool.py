"""The PostgreSQL store's pool: opening, health probes, and the transactions calls run in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Concatenate, ParamSpec, TypeVar

import asyncpg

from storage import postgres_records as records
from storage.postgres_connection import DRIVER_ERRORS, describe, open_pool
from storage.postgres_queries import Db
from storage.times import as_utc, utc_now

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

HEALTH_TIMEOUT = 5.0
"""Seconds a health probe waits for the database before it reports the store unwell."""


class PostgresPool:
    """A PostgreSQL database opened for the store: a pool, its schema migrated; every write
    one transaction.

    Times are the injected clock's, never the server's now(): every process and every test
    agrees on when a lease runs out, and a clock moved by hand moves it.
    """

    def __init__(
        self,
        dsn: str,
        *,
        clock: Callable[[], datetime] = utc_now,
        min_connections: int = 1,
        max_connections: int = 10,
    ) -> None:
        self._dsn = dsn
        self._where = describe(dsn)
        self._clock = clock
        self._sizes = (min_connections, max_connections)
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._where!r})"  # never the DSN: it may carry a password

    async def open(self) -> None:
        """Connect and migrate the schema to the current version."""
        if self._pool is not None:
            return
        low, high = self._sizes
        self._pool = await open_pool(self._dsn, min_size=low, max_size=high)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def ping(self) -> bool:
        """True while the store answers a trivial query."""
        if self._pool is None:
            return False
        try:
            async with self._pool.acquire(timeout=HEALTH_TIMEOUT) as db:
                return bool(await db.fetchval("SELECT 1", timeout=HEALTH_TIMEOUT) == 1)
        except DRIVER_ERRORS:
            return False

    async def probe_write(self) -> bool:
        """True when a one-row write commits; False on any database error."""
        if self._pool is None:
            return False
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                await self._statement(records.probe_write, self._now())
        except DRIVER_ERRORS as exc:
            logger.warning("the database %s cannot be written: %s", self._where, exc)
            return False
        return True

    def _acquire(self) -> asyncpg.pool.PoolAcquireContext:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        return self._pool.acquire()

    async def _read(
        self, work: Callable[Concatenate[Db, P], Awaitable[T]], /, *a: P.args, **k: P.kwargs
    ) -> T:
        async with self._acquire() as db:
            return await work(db, *a, **k)

    async def _write(
        self, work: Callable[Concatenate[Db, P], Awaitable[T]], /, *a: P.args, **k: P.kwargs
    ) -> T:
        """Run work as one transaction; any error rolls all of it back."""
        async with self._acquire() as db, db.transaction():
            return await work(db, *a, **k)

    # A write of one statement is a transaction of its own already: no BEGIN and COMMIT
    # round trips around it.
    _statement = _read

    def _now(self) -> datetime:
        return as_utc(self._clock())
