"""The job queue port: work an adapter has acknowledged, run here or by another process.

An adapter acknowledges a delivery, then defers its job: a kind (which handler runs it) and
a JSON payload (all the handler needs to rebuild the job, so any process can run it). Two
implementations stand behind the port:

- `InProcessQueue` (SQLite, the memory store, one process): the handler starts at once in
  this process, as a background task; the store's claims deduplicate deliveries.
- a queue shared through the database (`storage.jobqueue_procrastinate`, on PostgreSQL):
  the job is written to a table, and the worker of whichever process is free runs it. A
  `lock` lets only one job of that name run at a time, oldest first, across processes (turns
  of one thread in order); `dedupe` refuses a second queued job with the same key.

Either way the handler runs the same code, and the claims it takes keep it exactly-once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

logger = logging.getLogger(__name__)

JobHandler = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]
"""Runs one job from its payload; it answers every way the job can end itself."""


class Spawn(Protocol):
    """Starts work in the background; False (and nothing started) once stopping."""

    def __call__(self, work: Coroutine[Any, Any, None], *, name: str) -> bool: ...


class JobQueue(Protocol):
    """Where acknowledged work goes, and the worker side that runs it."""

    @property
    def shared(self) -> bool:
        """Whether another process may run a deferred job (its payload crosses processes)."""

    def handle(self, kind: str, handler: JobHandler) -> None:
        """Name the handler of a kind of job; every kind is registered before start()."""

    async def defer(
        self,
        *,
        kind: str,
        payload: dict[str, Any],
        lock: str | None = None,
        dedupe: str | None = None,
    ) -> bool:
        """Queue one job; False when a job with the same dedupe key is queued already."""

    async def open(self) -> None:
        """Be ready to defer (connections, tables), before any adapter takes deliveries."""

    async def start(self) -> None:
        """Begin running jobs, once the handlers are ready (the adapters have started)."""

    async def stop(self) -> None:
        """Take no new job from now on; return once the ones running have ended."""

    async def close(self) -> None:
        """Release what open() took; after the adapters have stopped deferring."""


class InProcessQueue:
    """Today's route for a single process: each job starts at once, here, through spawn.

    Nothing is deduplicated here (the claims the handler takes do that), and nothing waits:
    the spawner (the adapter's background tasks, which the engine adopts as jobs) tracks
    the work and lets a shutdown finish it.
    """

    shared = False

    def __init__(self, spawn: Spawn) -> None:
        self._spawn = spawn
        self._handlers: dict[str, JobHandler] = {}

    def handle(self, kind: str, handler: JobHandler) -> None:
        self._handlers[kind] = handler

    async def defer(
        self,
        *,
        kind: str,
        payload: dict[str, Any],
        lock: str | None = None,
        dedupe: str | None = None,
    ) -> bool:
        # What the spawner refuses while stopping it logs itself: not a duplicate either way.
        self._spawn(self._handlers[kind](payload), name=f"{kind} {dedupe or ''}".strip())
        return True

    async def open(self) -> None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def close(self) -> None:
        return None
