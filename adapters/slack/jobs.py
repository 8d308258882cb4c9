"""One job after the ack: feedback while it waits, then its result or an explanation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from adapters.common import Job, ResultLinks, run_and_deliver
from adapters.slack.deferral import Deferrer
from adapters.slack.guard import Guard
from adapters.slack.parsing import PLATFORM, Place, message_id
from adapters.slack.replies import FAILED, SUCCEEDED, WORKING, QueueNotice, SlackPoster
from adapters.slack.text import literal
from bot.engine import Engine
from bot.models import Reply

logger = logging.getLogger(__name__)


class BackgroundTasks:
    """The work started after an ack; stop() waits for all of it."""

    def __init__(self, *, adopt: Callable[[asyncio.Task[None]], bool] | None = None) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._adopt = adopt
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
        if self._adopt is not None:
            # Acked already: a shutdown beginning now must still let this work through.
            self._adopt(task)
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


class SlackOutlet:
    """A job's place in Slack: reactions on the asker's message, the queue notice, the thread."""

    def __init__(self, poster: SlackPoster, place: Place) -> None:
        self._poster = poster
        self._place = place
        self._notice = QueueNotice(poster, place)
        self._hourglass: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        # The hourglass goes on while the job starts: the user sees it within the same second
        # either way, and the job does not wait for Slack to confirm it.
        self._hourglass = asyncio.create_task(self._poster.react(self._place, WORKING))
        yield

    async def on_queued(self, position: int) -> None:
        await self._notice.update(position)

    async def deliver(self, reply: Reply) -> str:
        await self._notice.clear()
        return await self._poster.post_result(self._place, reply)

    def message_id(self, ts: str) -> str:
        return message_id(self._place.channel, ts)

    async def fail(self, text: str) -> None:
        await self._notice.clear()
        # The text may carry what others wrote: a file's name, the model's words.
        await self._poster.try_say(self._place, f":warning: {literal(text)}")
        await self.settle(FAILED)

    async def settle(self, outcome: str) -> None:
        """Swap the hourglass for the outcome's reaction."""
        if self._hourglass is not None:
            await self._hourglass
        await self._poster.react(self._place, outcome, remove=WORKING)

    def abandon(self) -> None:
        """Drop an hourglass that has not landed yet (the job was cancelled)."""
        if self._hourglass is not None and not self._hourglass.done():
            self._hourglass.cancel()


class JobRunner:
    """Reacts when a job is taken, shows its place in line, posts its result or its failure."""

    def __init__(self, *, poster: SlackPoster, links: ResultLinks) -> None:
        self._poster = poster
        self._links = links

    async def run(self, place: Place, job: Job, *, context: str) -> None:
        """Run one job; every way it ends leaves a message in the place."""
        outlet = SlackOutlet(self._poster, place)
        try:
            delivered = await run_and_deliver(
                job, outlet, links=self._links, platform=PLATFORM, what="Slack job", context=context
            )
            if delivered is not None:
                await outlet.settle(SUCCEEDED)
        finally:
            outlet.abandon()

    async def run_anchored(self, place: Place, note: str, job: Job, *, context: str) -> None:
        """Post who asked for what (markup, made safe by the caller); it carries the reactions."""
        anchor = await self._poster.try_say(place, note)
        await self.run(replace(place, anchor_ts=anchor), job, context=context)


@dataclass(frozen=True)
class Wiring:
    """What every listener works with: the engine, the poster, the checks, the background,
    and the hand-off of acknowledged work to the job queue."""

    engine: Engine
    poster: SlackPoster
    guard: Guard
    tasks: BackgroundTasks
    runner: JobRunner
    deferrer: Deferrer
