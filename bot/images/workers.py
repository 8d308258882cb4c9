"""A process pool shared by every job: Pillow's heavy work away from the event loop's GIL.

Threads were not enough: twenty photos decoded at once in threads keep the GIL so busy that
the event loop waits up to a quarter of a second for it. Worker processes have GILs of their
own, one core is left to the loop, and a FIFO queue across all jobs keeps no more than one
photo per worker in flight, so a burst waits its turn instead of crowding the loop out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from PIL import Image as Pil

from bot.errors import BotError, ShuttingDown
from bot.images.allocator import keep_freed_memory

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# An image within both passes straight through in a few milliseconds of mostly GIL-free
# decoding (a 512x512 JPEG: ~4 ms here); queued behind photos for a worker it would wait
# hundreds of them.
LIGHT_PIXELS = 512 * 512
LIGHT_BYTES = 256 * 1024

ExecutorFactory = Callable[[int], Executor]
"""Builds the pool for a number of workers (tests pass one that runs in threads)."""


def decodes_here(formats: tuple[str, ...]) -> bool:
    """True when a Pillow plugin for one of the formats is loaded in this process already.

    Loading them takes tens of milliseconds, too long for the event loop: start() loads them
    in a thread, and until then whatever needs one goes to a worker.
    """
    return any(name in Pil.OPEN for name in formats)


def default_size() -> int:
    """The cores this process may use, minus one for the event loop (at least one)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform
        cores = os.cpu_count() or 2
    return max(1, cores - 1)


class ImageWorkers:
    """Worker processes for image work, started on first use or by start(), closed by aclose()."""

    def __init__(self, size: int = 0, *, executor: ExecutorFactory | None = None) -> None:
        self._size = size or default_size()
        self._factory = executor or _process_pool
        self._pool: Executor | None = None
        self._slots = asyncio.Semaphore(self._size)
        self._closed = False
        self._jobs = 0

    @property
    def size(self) -> int:
        """How many calls run at once; the rest wait in the order they came."""
        return self._size

    @property
    def jobs(self) -> int:
        """How many calls the workers have been given so far."""
        return self._jobs

    @property
    def started(self) -> bool:
        return self._pool is not None

    async def start(self) -> None:
        """Start every worker now, so the first photo does not wait for an interpreter."""
        pool = self._executor()
        loop = asyncio.get_running_loop()
        # Each submission finds no idle worker and so starts one of its own.
        started = [loop.run_in_executor(pool, os.getpid) for _ in range(self._size)]
        _, *pids = await asyncio.gather(asyncio.to_thread(Pil.init), *started)
        logger.info("image workers ready: %d (pids %s)", self._size, sorted(set(pids)))

    async def run(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """function(*args, **kwargs) in a worker, after the calls that came before it."""
        await self._slots.acquire()
        try:
            pool = self._executor()
            future = asyncio.wrap_future(pool.submit(_carrying, function, *args, **kwargs))
        except BaseException:
            self._slots.release()
            raise
        self._jobs += 1
        # The slot is kept until the worker is done, even when the caller gives up waiting:
        # the worker is busy until then either way.
        future.add_done_callback(self._finished)
        try:
            outcome = await asyncio.shield(future)
        except BrokenExecutor:
            self._discard(pool)
            raise
        if isinstance(outcome, _Carried):
            raise outcome.rebuilt() from _WorkerTraceback(outcome.trace)
        result: T = outcome
        return result

    async def aclose(self) -> None:
        """Let the calls in progress finish, then stop the workers; later calls are refused."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True)
            logger.info("image workers stopped")

    def _executor(self) -> Executor:
        if self._closed:
            raise ShuttingDown()
        if self._pool is None:
            self._pool = self._factory(self._size)
        return self._pool

    def _finished(self, future: asyncio.Future[Any]) -> None:
        self._slots.release()
        if not future.cancelled():
            future.exception()  # seen here, so a caller that gave up leaves no warning behind

    def _discard(self, pool: Executor) -> None:
        """A worker died (killed, out of memory): the next call starts a fresh pool."""
        if self._pool is pool:
            logger.error("an image worker stopped unexpectedly; starting new workers")
            self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)


def _process_pool(size: int) -> Executor:
    # Imported here: a process that never converts an image never loads multiprocessing.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Not fork: the parent runs an event loop and threads whose locks a forked child would
    # inherit in whatever state they were in.
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(size, mp_context=context, initializer=_prepare_worker)


def _prepare_worker() -> None:
    """In each worker as it starts: the parent decides when to stop, and Pillow is loaded."""
    # Ctrl-C and SIGTERM reach the whole process group; the parent finishes the calls in
    # progress and then stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # A worker holds both ends of its own task queue, so a parent that is killed outright
    # never ends its wait for the next task: it watches the parent instead.
    threading.Thread(target=_exit_with_parent, name="parent-watch", daemon=True).start()
    # bot.images is imported already (this function was unpickled from it); the plugins of
    # the common formats are not until the first image is opened.
    Pil.preinit()
    keep_freed_memory()


def _exit_with_parent() -> None:
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()  # returns once the parent has exited, however it ended
        os._exit(1)


@dataclass(frozen=True)
class _Carried:
    """A BotError raised in a worker, as data: most of them cannot be pickled and rebuilt.

    Their constructors take the facts (a file name, a limit), not the sentence they make, so
    pickle's way of calling the class again with the sentence would build a different one.
    """

    kind: type[BotError]
    args: tuple[Any, ...]
    state: dict[str, Any]
    trace: str

    @classmethod
    def of(cls, error: BotError) -> _Carried:
        trace = "".join(traceback.format_exception(error))
        return cls(type(error), error.args, dict(vars(error)), trace)

    def rebuilt(self) -> BotError:
        """The same error, message and attributes, without calling its constructor again."""
        error = self.kind.__new__(self.kind, *self.args)
        error.__dict__.update(self.state)
        return error


class _WorkerTraceback(Exception):
    """Where in the worker the error was raised, as the cause of the error raised here."""

    def __init__(self, trace: str) -> None:
        super().__init__(trace)
        self.trace = trace

    def __str__(self) -> str:
        return f'\n"""\n{self.trace}"""'


def _carrying(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """In the worker: the call's result, or the BotError it raised carried as data."""
    try:
        return function(*args, **kwargs)
    except BotError as error:
        return _Carried.of(error)
