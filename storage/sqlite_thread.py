"""A sqlite3 connection served by a thread of its own; the event loop hands it units of work."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from queue import SimpleQueue
from typing import Any, TypeAlias, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

Work: TypeAlias = Callable[[sqlite3.Connection], Any]
# A unit of work and the future its outcome goes to. No work means: close and stop.
_Job: TypeAlias = "tuple[asyncio.Future[Any] | None, Work | None]"


class SqliteThread:
    """A sqlite3 connection that only its own thread touches; made by open(), ended by close()."""

    def __init__(self, jobs: SimpleQueue[_Job], thread: threading.Thread) -> None:
        self._jobs = jobs
        self._thread = thread
        self._closed: asyncio.Future[None] | None = None
        # A connection dropped without close() still ends its thread. The callback must not
        # hold self, and it must not run at exit, while the interpreter is being torn down.
        self._orphaned = weakref.finalize(self, jobs.put, (None, None))
        self._orphaned.atexit = False

    @classmethod
    async def open(cls, path: Path, *, name: str) -> SqliteThread:
        """Start the thread and open the connection on it."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        jobs: SimpleQueue[_Job] = SimpleQueue()
        # A daemon: a store never closed must not keep the process from exiting. Being cut
        # off mid-transaction is then a crash, which WAL survives.
        thread = threading.Thread(target=_serve, args=(path, jobs, ready), name=name, daemon=True)
        thread.start()
        try:
            await ready
        except BaseException:
            if ready.cancelled():
                jobs.put((None, None))  # stops the thread once it has connected
            else:
                thread.join()  # it could not connect: returning is all it has left to do
            raise
        return cls(jobs, thread)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """The result of work run on the connection's thread, after all work handed before it."""
        if self._closed is not None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((future, work))
        return await future

    async def close(self) -> None:
        """Let the work already handed over finish, close the connection, end the thread."""
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
            self._orphaned.detach()
            self._jobs.put((self._closed, None))
        # Shielded: one caller cancelled must not stop another from seeing the close through.
        await asyncio.shield(self._closed)
        # The thread has settled its last future; only its return is left to wait for.
        self._thread.join()


def _serve(path: Path, jobs: SimpleQueue[_Job], ready: asyncio.Future[None]) -> None:
    """The thread's life: connect, run work until told to stop, close."""
    try:
        # isolation_level=None: transactions are exactly the BEGIN ... COMMIT the work issues.
        db = sqlite3.connect(path, isolation_level=None)
    except BaseException as exc:
        _deliver(ready, exc, failed=True)
        return
    _deliver(ready, None)
    while True:
        future, work = jobs.get()
        if work is None:
            break
        try:
            result = work(db)
        except BaseException as exc:
            _deliver(future, exc, failed=True)
        else:
            _deliver(future, result)
    try:
        db.close()
    except sqlite3.Error as exc:
        _deliver(future, exc, failed=True)
    else:
        _deliver(future, None)


def _deliver(future: asyncio.Future[Any] | None, outcome: Any, *, failed: bool = False) -> None:
    """Hand an outcome to the loop that waits for it (from the connection's thread)."""
    if future is None:
        return
    try:
        future.get_loop().call_soon_threadsafe(_settle, future, outcome, failed)
    except RuntimeError:
        # The loop is closed: nobody is left to wait for the outcome.
        logger.debug("sqlite outcome dropped: its event loop is closed")


def _settle(future: asyncio.Future[Any], outcome: Any, failed: bool) -> None:
    if future.done():  # the waiter was cancelled; the work ran all the same
        return
    if failed:
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
