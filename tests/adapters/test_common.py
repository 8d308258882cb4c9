"""What Discord and Slack share: routing, the queue notice's pace, a job from start to end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest

from adapters.common import (
    APOLOGY,
    Delivered,
    MessageSite,
    QueueThrottle,
    Reference,
    Route,
    dm_key,
    excerpt,
    route_message,
    run_and_deliver,
)
from bot.engine import Deliver, QueueCallback
from bot.errors import BotError, InputError
from bot.models import Reply, ThreadKey, Turn, TurnStatus, Usage

THREAD = ThreadKey("chat", "w1", "c1", "t1")
BRANCH = ThreadKey("chat", "w1", "c1", "m1")
DM = ThreadKey("chat", "w1", "d1", "d1")
FRESH = ThreadKey("chat", "w1", "c1", "new")


def _turn(turn_id: int) -> Turn:
    return Turn(
        id=turn_id, thread_id=1, number=1, parent_id=None, user="u1", prompt="a fox",
        ratio=None, model="m", inputs=(), outputs=("sha",), status=TurnStatus.DONE,
    )  # fmt: skip


def _reply(turn_id: int = 7) -> Reply:
    return Reply(THREAD, _turn(turn_id), (), "", Usage())


# -- small values ----------------------------------------------------------------------------


def test_an_excerpt_keeps_short_text_and_cuts_long_text_to_the_limit() -> None:
    assert excerpt("a red fox") == "a red fox"
    assert excerpt("x" * 80) == "x" * 80
    assert excerpt("x" * 81) == "x" * 79 + "…"
    assert len(excerpt("y" * 500)) == 80
    assert excerpt("abcdef", limit=4) == "abc…"


def test_a_dms_top_level_is_one_conversation_and_a_thread_in_it_another() -> None:
    assert dm_key("chat", workspace="w1", channel="d1") == DM
    assert dm_key("chat", workspace="w1", channel="d1", thread=None) == DM
    assert dm_key("chat", workspace="w1", channel="d1", thread="5.0") == ThreadKey(
        "chat", "w1", "d1", "5.0"
    )


# -- the route decision ----------------------------------------------------------------------


class Directory:
    """What the store would say: known threads, result messages, and the lookups made."""

    def __init__(
        self, *, threads: tuple[ThreadKey, ...] = (), results: dict[str, int] | None = None
    ) -> None:
        self.threads = set(threads)
        self.results = results or {}
        self.lookups: list[str] = []
        self.linked: list[tuple[int, ThreadKey]] = []

    async def thread_for(self, key: ThreadKey) -> object | None:
        self.lookups.append(f"thread {key}")
        return "thread" if key in self.threads else None

    async def turn_for_message(self, *, platform: str, message_id: str) -> Turn | None:
        self.lookups.append(f"message {platform}:{message_id}")
        turn_id = self.results.get(message_id)
        return None if turn_id is None else _turn(turn_id)

    async def link_thread(self, turn_id: int, *, key: ThreadKey) -> None:
        self.linked.append((turn_id, key))
        self.threads.add(key)


async def test_a_message_in_a_thread_the_bot_runs_refines_it() -> None:
    store = Directory(threads=(THREAD,))
    assert await route_message(MessageSite(thread=THREAD), threads=store) == Route(THREAD)


async def test_a_reply_inside_a_thread_the_bot_runs_branches_there() -> None:
    store = Directory(threads=(THREAD,), results={"m1": 5})
    site = MessageSite(thread=THREAD, replied_to=Reference("m1", BRANCH))
    assert await route_message(site, threads=store) == Route(THREAD, reply_to=5)
    assert "message chat:m1" in store.lookups


async def test_a_reply_to_a_result_elsewhere_branches_in_that_results_conversation() -> None:
    store = Directory(results={"m1": 5})
    site = MessageSite(thread=THREAD, replied_to=Reference("m1", BRANCH), fresh=FRESH)
    assert await route_message(site, threads=store) == Route(BRANCH, reply_to=5)


async def test_a_reply_to_an_ordinary_message_with_a_mention_starts_afresh() -> None:
    site = MessageSite(replied_to=Reference("m2", BRANCH), fresh=FRESH)
    assert await route_message(site, threads=Directory()) == Route(FRESH, fresh=True)


async def test_a_mention_in_a_thread_the_bot_does_not_run_starts_afresh() -> None:
    site = MessageSite(thread=THREAD, fresh=THREAD)
    assert await route_message(site, threads=Directory()) == Route(THREAD, fresh=True)
    known = Directory(threads=(THREAD,))
    assert await route_message(site, threads=known) == Route(THREAD)


async def test_a_thread_opened_under_a_result_is_adopted_then_refined() -> None:
    store = Directory(results={"root": 9})
    site = MessageSite(thread=THREAD, thread_root="root", conversation=THREAD)
    assert await route_message(site, threads=store) == Route(THREAD, reply_to=9)
    assert store.linked == [(9, THREAD)]
    # Adopted: the next message refines the thread's newest image, not the root's again.
    assert await route_message(site, threads=store) == Route(THREAD)
    assert store.linked == [(9, THREAD)]


async def test_every_dm_message_refines_its_conversation() -> None:
    store = Directory()
    assert await route_message(MessageSite(conversation=DM), threads=store) == Route(DM)
    assert store.lookups == []
    site = MessageSite(thread=THREAD, thread_root="plain", conversation=THREAD)
    assert await route_message(site, threads=store) == Route(THREAD)
    assert store.linked == []


async def test_a_message_that_is_not_for_the_bot_has_no_route() -> None:
    store = Directory(results={"m1": 5})
    assert await route_message(MessageSite(), threads=store) is None
    assert store.lookups == []
    assert await route_message(MessageSite(thread=THREAD), threads=store) is None


# -- the queue-position throttle ---------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Screen:
    """The places shown; a show of `hold` waits until the test lets it finish."""

    def __init__(self, *, hold: int | None = None) -> None:
        self.shown: list[int] = []
        self.showing = asyncio.Event()
        self.finish = asyncio.Event()
        self._hold = hold
        self._news: asyncio.Queue[int] = asyncio.Queue()

    async def show(self, position: int) -> None:
        if position == self._hold:
            self.showing.set()
            await self.finish.wait()
        self.shown.append(position)
        await self._news.put(position)

    async def next(self) -> int:
        return await asyncio.wait_for(self._news.get(), 2)


class GatedSleep:
    """Stands in for asyncio.sleep: each wait is recorded and ends when the test opens it."""

    def __init__(self) -> None:
        self._asked: asyncio.Queue[tuple[float, asyncio.Future[None]]] = asyncio.Queue()

    async def __call__(self, delay: float) -> None:
        gate = asyncio.get_running_loop().create_future()
        await self._asked.put((delay, gate))
        await gate

    async def asked(self) -> tuple[float, asyncio.Future[None]]:
        return await asyncio.wait_for(self._asked.get(), 2)

    @property
    def idle(self) -> bool:
        return self._asked.empty()


class Rig:
    """A throttle with a one-second interval, on a screen, a clock and a sleep the test drives."""

    def __init__(self, *, hold: int | None = None) -> None:
        self.screen, self.clock, self.sleep = Screen(hold=hold), Clock(), GatedSleep()
        self.throttle = QueueThrottle(
            self.screen.show, interval=1.0, clock=self.clock, sleep=self.sleep
        )


async def test_the_first_place_shows_at_once_and_a_later_one_waits_for_the_interval() -> None:
    rig = Rig()
    assert not rig.throttle.shown
    await rig.throttle.offer(3)
    assert rig.screen.shown == [3] and rig.throttle.shown
    rig.clock.now = 0.4
    await rig.throttle.offer(2)
    await rig.throttle.offer(1)
    delay, gate = await rig.sleep.asked()
    assert delay == pytest.approx(0.6)
    assert rig.screen.shown == [3], "2 and 1 came within the interval"
    gate.set_result(None)
    assert await rig.screen.next() == 3 and await rig.screen.next() == 1
    assert rig.screen.shown == [3, 1], "only the newest place is shown"
    assert rig.sleep.idle


async def test_once_the_interval_is_over_a_new_place_shows_at_once() -> None:
    rig = Rig()
    await rig.throttle.offer(3)
    rig.clock.now = 1.0
    await rig.throttle.offer(2)
    assert rig.screen.shown == [3, 2]
    assert rig.sleep.idle


async def test_a_place_already_on_screen_is_not_shown_again() -> None:
    rig = Rig()
    await rig.throttle.offer(2)
    rig.clock.now = 5.0
    await rig.throttle.offer(2)
    assert rig.screen.shown == [2]
    await rig.throttle.offer(1)
    assert rig.screen.shown == [2, 1], "the skipped repeat did not restart the interval"


async def test_a_place_that_arrives_during_a_show_follows_one_interval_after_it() -> None:
    rig = Rig(hold=3)
    await rig.throttle.offer(4)
    await rig.throttle.offer(3)
    _, gate = await rig.sleep.asked()
    rig.clock.now = 1.0
    gate.set_result(None)
    await asyncio.wait_for(rig.screen.showing.wait(), 2)
    await rig.throttle.offer(2)
    rig.clock.now = 1.25
    rig.screen.finish.set()
    delay, gate = await rig.sleep.asked()
    assert delay == pytest.approx(0.75), "one interval after the show of 3 began"
    gate.set_result(None)
    assert [await rig.screen.next() for _ in range(3)] == [4, 3, 2]


async def test_after_close_nothing_more_is_shown() -> None:
    rig = Rig()
    await rig.throttle.offer(3)
    await rig.throttle.offer(2)
    await rig.sleep.asked()
    await rig.throttle.close()
    await rig.throttle.offer(1)
    assert rig.screen.shown == [3]
    assert rig.sleep.idle


async def test_close_waits_for_a_show_already_on_its_way() -> None:
    rig = Rig(hold=1)
    await rig.throttle.offer(2)
    await rig.throttle.offer(1)
    _, gate = await rig.sleep.asked()
    gate.set_result(None)
    await asyncio.wait_for(rig.screen.showing.wait(), 2)
    closing = asyncio.create_task(rig.throttle.close())
    await asyncio.sleep(0)  # one turn of the loop: close() runs up to where it waits
    assert not closing.done(), "the result must not overtake the show in flight"
    rig.screen.finish.set()
    await asyncio.wait_for(closing, 2)
    assert rig.screen.shown == [2, 1]


async def test_a_show_that_fails_is_logged_and_the_next_place_still_shows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    shown: list[int] = []

    async def flaky(position: int) -> None:
        if position == 3:
            raise RuntimeError("chat service down")
        shown.append(position)

    clock, sleep = Clock(), GatedSleep()
    throttle = QueueThrottle(flaky, interval=1.0, clock=clock, sleep=sleep)
    await throttle.offer(3)
    clock.now = 1.0
    await throttle.offer(2)
    assert shown == [2] and sleep.idle
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "place 3 in line" in record.getMessage() and record.exc_info is not None


# -- a job from start to end -----------------------------------------------------------------


class Outlet:
    """A platform's place for one job, recording what the job did there."""

    def __init__(self, *, deliver_error: Exception | None = None) -> None:
        self.events: list[str] = []
        self.queued: list[int] = []
        self.failures: list[str] = []
        self._deliver_error = deliver_error

    @contextlib.asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        self.events.append("working")
        try:
            yield
        finally:
            self.events.append("worked")

    async def on_queued(self, position: int) -> None:
        self.queued.append(position)

    async def deliver(self, reply: Reply) -> str:
        self.events.append("deliver")
        if self._deliver_error is not None:
            raise self._deliver_error
        return f"ts-{reply.turn.id}"

    def message_id(self, message: str) -> str:
        return f"c1:{message}"

    async def fail(self, text: str) -> None:
        self.events.append("fail")
        self.failures.append(text)


class Links:
    def __init__(self, *, error: Exception | None = None) -> None:
        self.linked: list[tuple[int, str, str]] = []
        self._error = error

    async def link_message(self, turn_id: int, *, platform: str, message_id: str) -> None:
        if self._error is not None:
            raise self._error
        self.linked.append((turn_id, platform, message_id))


async def _run(outlet: Outlet, links: Links, *, error: BaseException | None = None) -> object:
    async def job(on_queued: QueueCallback, deliver: Deliver) -> Reply:
        await on_queued(2)
        if error is not None:
            raise error
        reply = _reply()
        await deliver(reply)  # as the engine does, before the result becomes the head
        return reply

    return await run_and_deliver(
        job, outlet, links=links, platform="chat", what="chat job", context="turn 7"
    )


async def test_a_result_is_posted_after_the_work_and_linked_to_its_turn() -> None:
    outlet, links = Outlet(), Links()
    delivered = await _run(outlet, links)
    assert delivered == Delivered(_reply(), "ts-7")
    assert outlet.events == ["working", "deliver", "worked"]
    assert outlet.queued == [2] and outlet.failures == []
    assert links.linked == [(7, "chat", "c1:ts-7")]


async def test_a_refusal_is_told_in_its_own_words_and_nothing_is_linked() -> None:
    outlet, links = Outlet(), Links()
    refusal = InputError("That file is not an image.")
    assert await _run(outlet, links, error=refusal) is None
    assert outlet.failures == ["That file is not an image."]
    assert outlet.events == ["working", "worked", "fail"]
    assert links.linked == []


async def test_an_unexpected_error_is_logged_with_context_and_apologised_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outlet, links = Outlet(), Links()
    assert await _run(outlet, links, error=RuntimeError("disk full at /srv/secret")) is None
    assert outlet.failures == [APOLOGY]
    assert "secret" not in APOLOGY
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "chat job failed: turn 7"
    assert record.exc_info is not None and "disk full" in str(record.exc_info[1])
    assert links.linked == []


async def test_a_failed_post_is_explained_and_not_linked() -> None:
    outlet, links = Outlet(deliver_error=BotError("The upload was refused.")), Links()
    assert await _run(outlet, links) is None
    assert outlet.events == ["working", "deliver", "worked", "fail"]
    assert outlet.failures == ["The upload was refused."]
    assert links.linked == []


async def test_a_link_that_fails_is_logged_and_the_result_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outlet, links = Outlet(), Links(error=RuntimeError("store gone"))
    assert await _run(outlet, links) == Delivered(_reply(), "ts-7")
    assert outlet.failures == []
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "c1:ts-7" in record.getMessage() and "turn 7" in record.getMessage()


async def test_a_cancelled_job_is_neither_apologised_for_nor_linked() -> None:
    outlet, links = Outlet(), Links()
    with pytest.raises(asyncio.CancelledError):
        await _run(outlet, links, error=asyncio.CancelledError())
    assert outlet.failures == [] and links.linked == []
    assert outlet.events == ["working", "worked"]
