"""The SQLite store's file: its connections, write transactions, health probes."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from bot.errors import ConfigError
from storage import sqlite_records as records
from storage.sqlite_connection import Checkpointer, Role, connect
from storage.sqlite_rows import to_micros
from storage.sqlite_schema import migrate
from storage.sqlite_thread import SqliteThread
from storage.times import as_utc, utc_now

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

MIN_FREE_BYTES = 64 * 1024 * 1024
"""Free space below which the store reports itself unwritable: a few large images' worth."""


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged process may still write on the file system holding path."""
    stats = os.statvfs(path.parent)
    return stats.f_bavail * stats.f_frsize


class SqliteFile:
    """One SQLite file opened for the store: a writer, a reader and a checkpointer, each on a
    thread of its own; every write one transaction."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], datetime] = utc_now,
        min_free_bytes: int = MIN_FREE_BYTES,
    ) -> None:
        self._path = path
        self._clock = clock
        self._min_free_bytes = min_free_bytes
        self._writer: SqliteThread | None = None
        # Reads use their own connection: WAL lets them see the last commit while the
        # writer is busy (a prune batch, a large image).
        self._reader: SqliteThread | None = None
        self._checkpointer: Checkpointer | None = None

    async def open(self) -> None:
        """Connect and migrate the schema to the current version."""
        if self._writer is not None:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            writer = await connect(self._path, Role.WRITER)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"Cannot open the database {self._path}: {exc}") from exc
        opened = [writer]
        try:
            await writer.run(lambda conn: migrate(conn, path=self._path))
            opened.append(reader := await connect(self._path, Role.READER))
            opened.append(checkpoints := await connect(self._path, Role.CHECKPOINTER))
        except BaseException as exc:
            for db in reversed(opened):
                await db.close()
            if isinstance(exc, sqlite3.Error):
                raise ConfigError(f"Cannot use the database {self._path}: {exc}") from exc
            raise
        self._writer, self._reader = writer, reader
        self._checkpointer = Checkpointer(checkpoints)
        self._checkpointer.start()

    async def close(self) -> None:
        reader, writer, checkpointer = self._reader, self._writer, self._checkpointer
        self._reader = self._writer = self._checkpointer = None
        if checkpointer is not None:
            await checkpointer.stop()
        if reader is not None:
            await reader.close()
        if writer is not None:
            # No ANALYZE/PRAGMA optimize: statistics taken while the database is small lead
            # the planner to scan tables once it holds a million turns; the indexes alone
            # give every query its plan.
            await writer.close()

    async def ping(self) -> bool:
        """True while the store answers a trivial query."""
        if self._reader is None:
            return False
        try:
            answer = await self._reader.run(lambda conn: conn.execute("SELECT 1").fetchall())
        except sqlite3.Error:
            return False
        return answer == [(1,)]

    async def probe_write(self) -> bool:
        """True when a one-row write commits and the disk has room for the next images.

        A rewrite of one row fits in pages SQLite already holds, so it can succeed on a full
        disk where the next job's images cannot: the free space is checked as well.
        """
        if self._writer is None:
            return False
        try:
            await self._write(records.probe_write, to_micros(self._clock()))
            free = await self._writer.run(lambda _: free_bytes(self._path))
        except (sqlite3.Error, OSError) as exc:
            logger.warning("the database %s cannot be written: %s", self._path, exc)
            return False
        if free < self._min_free_bytes:
            logger.warning("the disk of %s has %d bytes free", self._path, free)
            return False
        return True

    async def _read(
        self, work: Callable[Concatenate[sqlite3.Connection, P], T], /, *a: P.args, **k: P.kwargs
    ) -> T:
        if self._reader is None:
            raise RuntimeError("the store is not open")
        return await self._reader.run(lambda conn: work(conn, *a, **k))

    async def _write(
        self, work: Callable[Concatenate[sqlite3.Connection, P], T], /, *a: P.args, **k: P.kwargs
    ) -> T:
        """Run work as one write transaction; any error rolls all of it back."""
        if self._writer is None:
            raise RuntimeError("the store is not open")

        def transaction(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn, *a, **k)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        result = await self._writer.run(transaction)
        if self._checkpointer is not None:
            self._checkpointer.poke()
        return result

    def _now(self) -> datetime:
        """The clock's time as stored (UTC, microseconds), so returned values match reads."""
        return as_utc(self._clock())
