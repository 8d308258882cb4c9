"""The SQLite store's connection thread: order, errors, cancellation and shutdown."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import closing
from functools import partial
from pathlib import Path

import pytest

from storage.sqlite_thread import SqliteThread

NAME = "sqlite-test"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteThread]:
    opened = await SqliteThread.open(tmp_path / "t.db", name=NAME)
    yield opened
    await opened.close()


def _threads() -> set[str]:
    return {thread.name for thread in threading.enumerate()}


async def test_work_runs_in_the_order_handed_on_one_thread_of_its_own(db: SqliteThread) -> None:
    seen: list[tuple[int, str]] = []

    def step(conn: sqlite3.Connection, n: int) -> int:
        seen.append((n, threading.current_thread().name))
        return n * n

    results = await asyncio.gather(*(db.run(partial(step, n=n)) for n in range(20)))

    assert results == [n * n for n in range(20)]
    assert seen == [(n, NAME) for n in range(20)]


async def test_an_error_reaches_its_caller_and_the_connection_goes_on(db: SqliteThread) -> None:
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await db.run(lambda conn: conn.execute("SELECT * FROM missing").fetchall())
    assert await db.run(lambda conn: conn.execute("SELECT 1").fetchall()) == [(1,)]


async def test_a_cancelled_caller_does_not_stop_the_work_behind_it(db: SqliteThread) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(conn: sqlite3.Connection) -> str:
        started.set()
        release.wait(5)
        return "slow"

    waiting = asyncio.create_task(db.run(slow))
    await asyncio.to_thread(started.wait, 5)
    waiting.cancel()
    behind = asyncio.create_task(db.run(lambda conn: "behind"))
    release.set()

    assert await behind == "behind"
    assert waiting.cancelled()


async def test_close_lets_queued_work_finish_then_refuses_more(
    db: SqliteThread, tmp_path: Path
) -> None:
    await db.run(lambda conn: conn.execute("CREATE TABLE t (x INTEGER)"))

    def insert(conn: sqlite3.Connection, n: int) -> None:
        conn.execute("INSERT INTO t VALUES (?)", (n,))

    queued = [asyncio.create_task(db.run(partial(insert, n=n))) for n in range(10)]
    await asyncio.sleep(0)  # the inserts are handed over before the close

    await asyncio.gather(db.close(), db.close())

    await asyncio.gather(*queued)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        await db.run(lambda conn: None)
    assert NAME not in _threads()
    with closing(sqlite3.connect(tmp_path / "t.db")) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone() == (10,)


async def test_a_database_that_cannot_be_opened_is_an_error_and_no_thread(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        await SqliteThread.open(tmp_path / "no" / "such" / "dir" / "t.db", name="sqlite-nothing")

    assert "sqlite-nothing" not in _threads()


async def test_a_connection_dropped_unclosed_still_ends_its_thread(tmp_path: Path) -> None:
    db = await SqliteThread.open(tmp_path / "t.db", name="sqlite-dropped")
    [thread] = [thread for thread in threading.enumerate() if thread.name == "sqlite-dropped"]

    del db
    gc.collect()

    await asyncio.to_thread(thread.join, 5)
    assert not thread.is_alive()
