"""One job after the ack: feedback while it waits, then its result or an explanation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from adapters.slack.parsing import Place, message_id
from adapters.slack.replies import FAILED, SUCCEEDED, WORKING, QueueNotice, SlackPoster
from bot.engine import QueueCallback
from bot.errors import BotError
from bot.models import Reply

logger = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on my side while making that image. Please try again."

Operation = Callable[[QueueCallback], Awaitable[Reply]]
LinkMessage = Callable[[int, str], Awaitable[None]]


class BackgroundTasks:
    """The work started after an ack; stop() waits for all of it."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    def spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> bool:
        """Start work in the background; False (and nothing started) once closed."""
        if self.closed:
            work.close()
            logger.info("not starting %s: the Slack adapter is stopping", name)
            return False
        task = asyncio.create_task(self._guard(work, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def idle(self) -> None:
        """Wait for the work running now, and for any it starts meanwhile."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Refuse new work and wait for what is running."""
        self.closed = True
        await self.idle()

    @staticmethod
    async def _guard(work: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await work
        except Exception:
            logger.exception("background Slack work failed: %s", name)


class JobRunner:
    """Reacts when a job is taken, shows its place in line, posts its result or its failure."""

    def __init__(self, *, poster: SlackPoster, link_message: LinkMessage) -> None:
        self._poster = poster
        self._link_message = link_message

    async def run(self, place: Place, operation: Operation, *, context: str) -> None:
        """Run one job; every way it ends leaves a message in the place."""
        # The hourglass goes on while the job starts: the user sees it within the same second
        # either way, and the job does not wait for Slack to confirm it.
        working = asyncio.create_task(self._poster.react(place, WORKING))
        notice = QueueNotice(self._poster, place)
        try:
            reply = await operation(notice.update)
            await notice.clear()
            ts = await self._poster.post_result(place, reply)
            await self._link_message(reply.turn.id, message_id(place.channel, ts))
        except BotError as exc:
            logger.info("job refused (%s): %s", context, type(exc).__name__)
            await self._failed(place, notice, exc.user_message, working)
        except Exception:
            logger.exception("Slack job failed: %s", context)
            await self._failed(place, notice, APOLOGY, working)
        else:
            await working
            await self._poster.react(place, SUCCEEDED, remove=WORKING)
        finally:
            if not working.done():
                working.cancel()

    async def _failed(
        self, place: Place, notice: QueueNotice, message: str, working: asyncio.Task[None]
    ) -> None:
        await notice.clear()
        await self._poster.try_say(place, f":warning: {message}")
        await working
        await self._poster.react(place, FAILED, remove=WORKING)
