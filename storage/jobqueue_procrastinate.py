"""Jobs across processes on PostgreSQL: the shared side of the JobQueue port, on procrastinate.

How the port maps onto procrastinate:

- a kind of job is a procrastinate task, and a queue of the same name: a process's worker
  listens only to the kinds it has handlers for (a Discord-only process takes no Slack job);
- `lock` is procrastinate's lock: one job of a lock runs at a time, oldest first, across
  every process (turns of one thread in order);
- `dedupe` is its queueing lock: a second job with the key is refused while one waits;
- each worker records a heartbeat every third of a job lease. A job left running by a worker
  without a heartbeat for a lease and a third (its process died) is put back in the queue,
  so that a live process runs it again. By then the claims the dead process held have run
  out: the new run claims the event again and answers it, unless the dead process had
  recorded a turn for it. Its claims were settled with the turn, so the new run drops it as
  a repeat and the lease recovery tells the user, once.

Its tables are created at start-up under an advisory lock, so processes starting together
create them once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import procrastinate
import psycopg
from procrastinate import exceptions
from procrastinate.jobs import Job, Status
from procrastinate.schema import SchemaManager

logger = logging.getLogger(__name__)

SCHEMA_LOCK = 0x62616E616E61  # "banana": the advisory lock taken while creating the tables
STALLED_MARGIN = 1.0
"""Seconds past a claim's lease before a dead worker's job runs again (clocks, a slow renew)."""
RETRY_WAIT = 1
"""Seconds before a job a stopping process handed back is offered again."""
POOL_SIZE = 4
"""procrastinate's own connections: its listener, fetches, heartbeats and results."""
CONNECT_TIMEOUT = 10

JobHandler = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]
"""bot.engine.JobHandler, spelled out: storage does not import the engine."""


class Declined(Exception):
    """This process is stopping: the job goes back to the queue for another."""


@dataclass(frozen=True)
class Timings:
    """The worker's heartbeat and stall timeout, from the lease the claims are held under."""

    heartbeat: float
    stalled: float

    @classmethod
    def for_lease(cls, lease: float) -> Timings:
        # A dead worker's last heartbeat is at most a third of a lease older than its last
        # renewal of its claims, which run out a lease after it: so a lease and a third.
        return cls(heartbeat=lease / 3, stalled=lease * 4 / 3 + STALLED_MARGIN)


class ProcrastinateQueue:
    """Deferred jobs in PostgreSQL, run by the worker of whichever process is free."""

    shared = True

    def __init__(
        self,
        dsn: str,
        *,
        concurrency: int,
        lease: float,
        adopt: Callable[[asyncio.Task[Any]], bool],
        pool_size: int = POOL_SIZE,
    ) -> None:
        self._dsn = dsn
        self._concurrency = concurrency
        self._timings = Timings.for_lease(lease)
        self._adopt = adopt
        connector = procrastinate.PsycopgConnector(
            conninfo=dsn,
            min_size=1,
            max_size=pool_size,
            kwargs={"connect_timeout": CONNECT_TIMEOUT},
        )
        self._app = procrastinate.App(connector=connector)
        self._retry = procrastinate.RetryStrategy(wait=RETRY_WAIT, retry_exceptions=[Declined])
        self._kinds: list[str] = []
        self._opened = False
        self._worker: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def handle(self, kind: str, handler: JobHandler) -> None:
        async def run(payload: dict[str, Any]) -> None:
            task = asyncio.current_task()
            # Adopted, the job is one the engine lets finish at a shutdown; refused, the engine
            # is stopping and would refuse the job: another process's worker takes it instead.
            if task is None or not self._adopt(task):
                raise Declined()
            await handler(payload)

        self._app.task(name=kind, queue=kind, retry=self._retry)(run)
        self._kinds.append(kind)

    async def defer(
        self,
        *,
        kind: str,
        payload: dict[str, Any],
        lock: str | None = None,
        dedupe: str | None = None,
    ) -> bool:
        task = self._app.tasks[kind].configure(lock=lock, queueing_lock=dedupe)
        try:
            await task.defer_async(payload=payload)
        except exceptions.AlreadyEnqueued:
            return False
        return True

    async def open(self) -> None:
        await create_schema(self._dsn)
        await self._app.open_async()
        self._opened = True

    async def start(self) -> None:
        if not self._kinds or self._worker is not None:
            return
        self._worker = asyncio.create_task(self._work(), name="job worker")
        self._sweeper = asyncio.create_task(self._sweep(), name="stalled jobs")
        logger.info(
            "job worker: taking %s from PostgreSQL, %d at a time",
            ", ".join(self._kinds),
            self._concurrency,
        )

    async def stop(self) -> None:
        for task in (self._sweeper, self._worker):
            if task is not None:
                # Cancelled, procrastinate's worker fetches no more and waits for its jobs.
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sweeper = self._worker = None

    async def close(self) -> None:
        await self.stop()
        if self._opened:
            self._opened = False
            await self._app.close_async()

    async def retry_stalled(self) -> int:
        """Put back in the queue the jobs of workers that died; returns how many."""
        manager = self._app.job_manager
        stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=self._timings.stalled)
        again = 0
        for job in stalled:
            if job.queue in self._kinds:
                again += await self._retry_one(job)
        return again

    async def _retry_one(self, job: Job) -> int:
        manager = self._app.job_manager
        try:
            await manager.retry_job(job)
        except exceptions.ConnectorException:
            # Another process put it back first, or a later delivery of the same event waits
            # under its queueing lock: this one ends, so that its lock frees the thread.
            with contextlib.suppress(exceptions.ConnectorException):
                await manager.finish_job(job, status=Status.FAILED, delete_job=False)
            return 0
        logger.warning("job %s of a worker that stopped answering runs again", job.id)
        return 1

    async def _work(self) -> None:
        await self._app.run_worker_async(
            queues=self._kinds,
            name="jobs",
            concurrency=self._concurrency,
            install_signal_handlers=False,  # the service handles SIGTERM and stops us
            update_heartbeat_interval=self._timings.heartbeat,
            stalled_worker_timeout=self._timings.stalled,
            delete_jobs="successful",
        )

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._timings.heartbeat)
            try:
                await self.retry_stalled()
            except Exception:
                logger.warning("could not look for stalled jobs", exc_info=True)


async def create_schema(dsn: str) -> None:
    """procrastinate's tables, created once however many processes start at the same time."""
    connecting = psycopg.AsyncConnection.connect(dsn, connect_timeout=CONNECT_TIMEOUT)
    async with await connecting as db, db.transaction():
        # Held until the transaction ends: a process starting meanwhile waits, then finds them.
        await db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        found = await (await db.execute("SELECT to_regclass('procrastinate_jobs')")).fetchone()
        if found is not None and found[0] is not None:
            return
        await db.execute(SchemaManager.get_schema())
    logger.info("created the job queue's tables")
