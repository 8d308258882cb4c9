"""The tasks with a job in progress, so a shutdown can let them finish and cancel the rest."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.errors import ShuttingDown

logger = logging.getLogger(__name__)

CANCEL_TIMEOUT = 5.0


class InFlight:
    """Remembers each task that started a job until the task ends (its reply posted)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def check(self) -> None:
        """Raise ShuttingDown once closed, unless the current task was adopted before."""
        if self._closed and asyncio.current_task() not in self._tasks:
            raise ShuttingDown()

    def adopt(self, task: asyncio.Task[Any]) -> bool:
        """Count a task as a job from now on: work a platform was told is taken (an acked
        event) is let in after close and waited for by drain. False once closed."""
        if self._closed:
            return False
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def enter(self) -> None:
        """Register the current task for a new job, or raise ShuttingDown once closed."""
        self.check()
        task = asyncio.current_task()
        if task is None or task in self._tasks:
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        """Refuse new jobs; the ones already started carry on."""
        self._closed = True

    async def drain(self, *, grace: float, cancel_grace: float = CANCEL_TIMEOUT) -> int:
        """Close, let the tasks end within grace seconds, cancel the rest; returns how many."""
        self.close()
        current = asyncio.current_task()
        running = {task for task in self._tasks if task is not current and not task.done()}
        if not running:
            return 0
        logger.info("waiting up to %.0f s for %d jobs in progress", grace, len(running))
        _, late = await asyncio.wait(running, timeout=grace)
        if not late:
            return 0
        logger.warning("cancelling %d jobs still running after %.0f s", len(late), grace)
        for task in late:
            task.cancel()
        # Cancelled jobs mark their turns failed on the way out; give them a moment to do so.
        await asyncio.wait(late, timeout=cancel_grace)
        return len(late)
