"""What every platform does alike: routing a message, pacing queue notices, running a job."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import httpx

from bot.engine import Deliver, QueueCallback, upscale_size
from bot.errors import AlreadyHandled, BotError
from bot.models import Reply, ThreadKey, Turn
from bot.upstream import ModelCapabilities

logger = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on my side while making that image. Please try again."
EXCERPT_LENGTH = 80

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Job = Callable[[QueueCallback, Deliver], Awaitable[Reply]]
MessageT = TypeVar("MessageT")


def excerpt(text: str, *, limit: int = EXCERPT_LENGTH) -> str:
    """The text as it is when it fits in `limit` characters, else cut to fit with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dm_key(platform: str, *, workspace: str, channel: str, thread: str | None = None) -> ThreadKey:
    """A DM's conversation: its top level is one (thread = channel); a thread in it is another."""
    return ThreadKey(platform, workspace, channel, thread or channel)


async def read_within(
    response: httpx.Response, *, limit: int, too_large: Callable[[], BotError]
) -> bytes:
    """A download's raw body, refused as soon as its declared or counted size passes limit."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


# -- where a message's job goes ----------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Where a message's job goes: a new picture, or a refinement (from `reply_to` when set)."""

    key: ThreadKey
    fresh: bool = False
    reply_to: int | None = None


@dataclass(frozen=True)
class Reference:
    """A message that another one answers, and the conversation a branch from it continues."""

    message_id: str
    key: ThreadKey


@dataclass(frozen=True)
class MessageSite:
    """Where a message was posted, in the core's terms; each platform fills in what it has."""

    thread: ThreadKey | None = None  # the thread it is in: refined when the bot runs that thread
    thread_root: str | None = None  # that thread's first message: a result there adopts it
    replied_to: Reference | None = None  # the message it replies to: a result there is branched
    conversation: ThreadKey | None = None  # a DM's conversation, which every message refines
    fresh: ThreadKey | None = None  # where a new picture starts when the message asks for one


class ThreadDirectory(Protocol):
    """What the store knows of threads and result messages (the engine answers it)."""

    async def thread_for(self, key: ThreadKey) -> object | None: ...

    async def turn_for_message(self, *, platform: str, message_id: str) -> Turn | None: ...

    async def link_thread(self, turn_id: int, *, key: ThreadKey) -> None: ...


async def route_message(site: MessageSite, *, threads: ThreadDirectory) -> Route | None:
    """Refine the bot's thread, branch from a result, go on in a DM, start on a mention, or None."""
    replied = site.replied_to
    replied_turn = None
    if replied is not None:
        replied_turn = await _turn_id(threads, replied.key, replied.message_id)
    if site.thread is not None:
        if await threads.thread_for(site.thread) is not None:
            return Route(site.thread, reply_to=replied_turn)
        root_turn = await _turn_id(threads, site.thread, site.thread_root)
        if root_turn is not None:
            # From now on the thread is the bot's: its next messages refine it without a lookup.
            await threads.link_thread(root_turn, key=site.thread)
            return Route(site.thread, reply_to=root_turn)
    if replied is not None and replied_turn is not None:
        return Route(replied.key, reply_to=replied_turn)
    if site.conversation is not None:
        return Route(site.conversation)
    if site.fresh is not None:
        return Route(site.fresh, fresh=True)
    return None


async def _turn_id(threads: ThreadDirectory, key: ThreadKey, message_id: str | None) -> int | None:
    if message_id is None:
        return None
    turn = await threads.turn_for_message(platform=key.platform, message_id=message_id)
    return None if turn is None else turn.id


# -- the place in line -------------------------------------------------------------------------


class QueueThrottle:
    """Shows the newest place in line at most once per interval, and only when it has changed."""

    def __init__(
        self,
        show: Callable[[int], Awaitable[None]],
        *,
        interval: float,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._show = show
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._last: float | None = None
        self._on_screen: int | None = None
        self._pending: int | None = None
        self._later: asyncio.Task[None] | None = None
        self._showing = False
        self._closed = False

    @property
    def shown(self) -> bool:
        """Whether a place in line has been shown."""
        return self._last is not None

    async def offer(self, position: int) -> None:
        """A new place in line: shown now, or when the interval since the last show is over."""
        if self._closed:
            return
        self._pending = position
        wait = self._wait()
        if wait <= 0:
            await self._flush()
        elif self._later is None:
            self._later = asyncio.create_task(self._flush_after(wait))

    async def close(self) -> None:
        """Show nothing more: the result (or an error) takes over."""
        self._closed = True
        self._pending = None
        later, self._later = self._later, None
        if later is None:
            return
        if not self._showing:
            later.cancel()
        # A show already on its way must land before the result, or it would overwrite it.
        with contextlib.suppress(asyncio.CancelledError):
            await later

    def _wait(self) -> float:
        return 0.0 if self._last is None else self._last + self._interval - self._clock()

    async def _flush_after(self, wait: float) -> None:
        try:
            while True:
                await self._sleep(wait)
                await self._flush()
                if self._pending is None or self._closed:
                    return
                wait = self._wait()  # a newer place arrived while the show was on its way
        finally:
            if self._later is asyncio.current_task():
                self._later = None

    async def _flush(self) -> None:
        position, self._pending = self._pending, None
        if position is None or self._closed or position == self._on_screen:
            return
        self._last, self._on_screen = self._clock(), position
        self._showing = True
        try:
            await self._show(position)
        except Exception:
            # The place in line is a courtesy: failing to show it must not cost the job.
            logger.exception("could not show place %s in line", position)
        finally:
            self._showing = False


# -- one job, start to end ---------------------------------------------------------------------


class Outlet(Protocol[MessageT]):
    """Where one job shows its place in line, its result and its failure, on one platform."""

    def working(self) -> AbstractAsyncContextManager[None]: ...

    async def on_queued(self, position: int) -> None: ...

    async def deliver(self, reply: Reply) -> MessageT: ...

    def message_id(self, message: MessageT) -> str: ...

    async def fail(self, text: str) -> None: ...


class ResultLinks(Protocol):
    """Remembers which message shows which turn (the engine answers it)."""

    async def link_message(self, turn_id: int, *, platform: str, message_id: str) -> None: ...


@dataclass(frozen=True)
class Delivered(Generic[MessageT]):
    """A result as posted."""

    reply: Reply
    message: MessageT


async def run_and_deliver(
    job: Job,
    outlet: Outlet[MessageT],
    *,
    links: ResultLinks,
    platform: str,
    what: str,
    context: str,
) -> Delivered[MessageT] | None:
    """Run one engine call and post its result; every failure is explained to the requester.

    The result is posted from inside the engine call, so the engine makes it the thread's
    head only once it is out: a result that could not be posted never becomes the parent of
    the next refinement.
    """
    posted: list[MessageT] = []

    async def deliver(reply: Reply) -> None:
        message = await outlet.deliver(reply)
        posted.append(message)
        await _link(links, reply.turn.id, platform=platform, message_id=outlet.message_id(message))

    try:
        async with outlet.working():
            reply = await job(outlet.on_queued, deliver)
    except AlreadyHandled:
        logger.info("%s: another delivery of it is answered (%s)", what, context)
        return None
    except BotError as exc:
        logger.info("%s refused (%s): %s", what, context, type(exc).__name__)
        await outlet.fail(exc.user_message)
        return None
    except Exception:
        logger.exception("%s failed: %s", what, context)
        await outlet.fail(APOLOGY)
        return None
    return Delivered(reply, posted[0])


async def _link(links: ResultLinks, turn_id: int, *, platform: str, message_id: str) -> None:
    try:
        await links.link_message(turn_id, platform=platform, message_id=message_id)
    except Exception:
        # The result is out already: a link that failed is worth a log line, not an apology.
        logger.exception("could not link message %s to turn %s", message_id, turn_id)


# -- result buttons ----------------------------------------------------------------------------

Capabilities = Callable[[str], ModelCapabilities]
"""What a model can do, by id (the engine's `capabilities`)."""


def can_upscale(turn: Turn, capabilities: Capabilities | None) -> bool:
    """Whether an upscale of the turn would be taken: its model makes a larger size."""
    if capabilities is None:
        return False
    try:
        upscale_size(capabilities(turn.model), turn.size)
    except BotError:
        return False
    return True
