"""SQLite connections for the store: pragmas, one-call units of work, background checkpoints."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from enum import Enum
from pathlib import Path

from storage.sqlite_thread import SqliteThread

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
WAL_RETRY_SECONDS = 0.01

# Commits never copy the WAL into the database (a copy and an fsync: tens of ms on a busy
# disk, the worst latency a write could see); the Checkpointer does it on its own thread.
# This much WAL (in pages) still makes a commit checkpoint, should the Checkpointer lag.
WRITER_AUTOCHECKPOINT_PAGES = 16384

CHECKPOINT_INTERVAL = 1.0
"""Seconds between background checkpoints while writes keep coming: fewer, larger copies."""


class Role(Enum):
    WRITER = "writer"
    READER = "reader"
    CHECKPOINTER = "checkpointer"


def _configure(db: sqlite3.Connection, role: Role) -> None:
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA cache_size = -16384")
    if role is Role.READER:
        db.execute("PRAGMA query_only = ON")
    if role is not Role.WRITER:
        return
    mode = _switch_to_wal(db)
    if mode.lower() != "wal":
        logger.warning("the database does not support WAL (journal mode %s)", mode)
    # WAL + synchronous=NORMAL: a committed transaction survives the process being killed
    # (the WAL write is in the OS's hands at COMMIT); only a power loss or an OS crash can
    # lose the last transactions. FULL would fsync on every commit for a protection the
    # bot does not need.
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute(f"PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}")


def _switch_to_wal(db: sqlite3.Connection) -> str:
    """The journal mode after asking for WAL, waiting as long as busy_timeout would."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            (mode,) = db.execute("PRAGMA journal_mode = WAL").fetchall()[0]
            return str(mode)
        except sqlite3.OperationalError as exc:
            # The switch takes the new file's lock without SQLite's busy handler: another
            # process opening the same new file at the same moment holds it for a moment.
            # This runs on the connection's own thread, never on the event loop.
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(WAL_RETRY_SECONDS)


async def connect(path: Path, role: Role) -> SqliteThread:
    """A connection configured for its role (the writer first: it switches the file to WAL)."""
    # Work is handed over whole (a transaction, or a query with its rows): one thread hop
    # instead of one per statement, and no other coroutine's statement can land inside it.
    db = await SqliteThread.open(path, name=f"sqlite-{role.value}")
    try:
        await db.run(lambda conn: _configure(conn, role))
    except BaseException:
        await db.close()
        raise
    return db


class Checkpointer:
    """Copies committed WAL frames into the database file in the background."""

    def __init__(self, db: SqliteThread, *, interval: float = CHECKPOINT_INTERVAL) -> None:
        self._db = db
        self._interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sqlite-checkpointer")

    def poke(self) -> None:
        """Note that a write committed; checkpoints coalesce while one is running."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
        await self._db.close()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                # PASSIVE never waits for a lock: the writer and the readers go on meanwhile.
                await self._db.run(_passive_checkpoint)
            except sqlite3.Error:
                logger.exception("background WAL checkpoint failed")
            await asyncio.sleep(self._interval)


def _passive_checkpoint(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
