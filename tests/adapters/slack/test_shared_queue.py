"""Clicks and Refine forms on a queue processes share: each is a job whose payload crosses as
JSON (as a queue row does), waits behind its thread's turns, and is answered once even when a
worker that died runs it again."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest

from bot.engine import InProcessQueue
from tests.conftest import EngineFactory
from tests.fakes.gptproto import FakeGptProto
from tests.fakes.slack import FakeSlack
from tests.fakes.slack.harness import SlackBot, running_slack, unexpected_errors


@dataclass
class Queued:
    kind: str
    payload: str  # as the row holds it
    lock: str | None
    dedupe: str | None


class SharedQueue(InProcessQueue):
    """The shared side of the JobQueue port in memory: a job runs when the test runs it."""

    shared = True

    def __init__(self) -> None:
        super().__init__(_nothing_runs_here)
        self.jobs: list[Queued] = []

    async def defer(
        self,
        *,
        kind: str,
        payload: dict[str, Any],
        lock: str | None = None,
        dedupe: str | None = None,
    ) -> bool:
        self.jobs.append(Queued(kind, json.dumps(payload), lock, dedupe))
        return True

    async def run(self, job: Queued) -> None:
        """What a worker in any process does with the row."""
        await self._handlers[job.kind](json.loads(job.payload))


def _nothing_runs_here(work: Coroutine[Any, Any, None], *, name: str) -> bool:
    work.close()
    raise AssertionError(f"{name} was started in process instead of queued")


@pytest.fixture
async def queue() -> SharedQueue:
    return SharedQueue()


@pytest.fixture
async def slack(make_engine: EngineFactory, queue: SharedQueue) -> AsyncIterator[SlackBot]:
    engine = await make_engine()
    async with FakeSlack() as fake, running_slack(fake=fake, engine=engine, jobs=queue) as bot:
        yield bot
        assert unexpected_errors(bot) == []


async def answered_mention(slack: SlackBot, queue: SharedQueue, text: str) -> dict[str, Any]:
    event = await slack.mention(text)
    [job] = queue.jobs
    assert job.kind == "slack.event"
    await queue.run(job)
    return event


async def test_a_re_roll_is_a_queued_job_in_its_threads_line_answered_once_if_run_twice(
    slack: SlackBot, queue: SharedQueue, gptproto: FakeGptProto, caplog: pytest.LogCaptureFixture
) -> None:
    event = await answered_mention(slack, queue, "a snail")
    clicked = await slack.click("reroll", slack.result_message(event["ts"]))
    await slack.settle()

    mentioned, job = queue.jobs
    assert job.kind == "slack.click"
    assert job.lock == mentioned.lock is not None  # behind the thread's other turns
    assert job.dedupe == f"interaction:{clicked['trigger_id']}"
    assert "legacy-verification-token" not in job.payload
    assert "blocks" not in job.payload  # the clicked message's, which no handler reads
    assert len(gptproto.generations) == 1  # acknowledged, not run: a worker takes it

    await queue.run(job)
    first, second = gptproto.generations
    assert second.json["contents"] == first.json["contents"]
    assert [u.data for u in slack.fake.uploads] == [first.produced[0], second.produced[0]]

    # A worker that died after recording it: the queue runs the job again, and it is a repeat.
    with caplog.at_level(logging.INFO, logger="adapters.slack.buttons"):
        await queue.run(job)
    assert len(gptproto.generations) == 2
    assert len(slack.fake.uploads) == 2
    assert slack.said(event["ts"]).count("<@UALICE> asked for a re-roll.") == 1
    assert "already handled" in caplog.text


async def test_a_submitted_refine_form_is_a_queued_job_that_refines_the_clicked_turn(
    slack: SlackBot, queue: SharedQueue, gptproto: FakeGptProto
) -> None:
    event = await answered_mention(slack, queue, "a lake")
    await slack.click("refine", slack.result_message(event["ts"]))
    view = await slack.opened_form()
    assert len(queue.jobs) == 1  # the form opens where it was clicked: its trigger id lasts 3 s

    status, body = await slack.submit(view, "add a moon")
    assert (status, body) == (200, "")
    mentioned, job = queue.jobs
    assert job.kind == "slack.form"
    assert job.lock == mentioned.lock
    assert job.dedupe is not None and job.dedupe.startswith("interaction:trigger-")
    assert len(gptproto.generations) == 1

    await queue.run(job)
    await queue.run(job)  # run again by the queue: a repeat
    first, second = gptproto.generations
    assert second.input_images() == [first.produced[0]]
    assert any("add a moon" in p.get("text", "") for p in second.json["contents"][-1]["parts"])
    assert [u.thread_ts for u in slack.fake.uploads] == [event["ts"], event["ts"]]
    assert sum("add a moon" in text for text in slack.said(event["ts"])) == 1


async def test_a_refine_form_left_empty_is_refused_in_the_form_and_queues_nothing(
    slack: SlackBot, queue: SharedQueue, gptproto: FakeGptProto
) -> None:
    event = await answered_mention(slack, queue, "a kite")
    await slack.click("refine", slack.result_message(event["ts"]))
    status, body = await slack.submit(await slack.opened_form(), "  ")
    assert status == 200
    assert json.loads(body)["response_action"] == "errors"
    assert len(queue.jobs) == 1
    assert len(gptproto.generations) == 1
