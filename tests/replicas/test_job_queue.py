"""The job queue PostgreSQL processes share: a delivery one process acknowledged is answered by
another's worker, even when the one that received it dies right after the acknowledgement.

Real `python -m bot run --role web` processes on one PostgreSQL database (the queue is only
there), one fake Slack and one fake gptproto; every wait is for what the fakes or the
database record, with a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.fakes.slack import block_action, view_submission
from tests.fakes.slack.events import slash_command
from tests.fakes.slack.harness import as_payload
from tests.fakes.slack.workspace import json_param
from tests.replicas.test_replicas import assert_answered_once, prompts, restarts, settled
from tests.support.postgres import throwaway_database
from tests.support.replicas import (
    CHANNEL,
    LEASE_SECONDS,
    Replica,
    World,
    generations_for,
    hold_next,
    let_others_through,
    mention,
    replica_group,
    texts_in,
    thread_of,
    until,
    uploads_in,
)

STALLED_WITHIN = LEASE_SECONDS * 4 / 3 + 1 + LEASE_SECONDS + 10
"""A dead worker's job runs again a lease and a third after its last heartbeat, plus a margin
(storage.jobqueue_procrastinate.Timings), found by a sweep every third of a lease."""


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """PostgreSQL only: on SQLite there is no shared queue (each process runs its own jobs)."""
    async with throwaway_database() as dsn:
        yield dsn


async def queued_job(world: World, payload: dict[str, Any]) -> list[str]:
    """The statuses of the queue's jobs for this delivery: an event's dedupe key is its event
    id, a click's or a submitted form's its trigger id."""
    if "event_id" in payload:
        key = f"event:{payload['event_id']}"
    else:
        key = f"interaction:{payload['trigger_id']}"
    db = await asyncpg.connect(world.database_url, timeout=5)
    try:
        rows = await db.fetch(
            "SELECT status::text FROM procrastinate_jobs WHERE queueing_lock = $1", key
        )
    finally:
        await db.close()
    return [row[0] for row in rows]


async def test_a_job_acknowledged_by_a_process_killed_at_once_is_answered_by_another(
    world: World, tmp_path: Any
) -> None:
    first, second = prompts(2, "a banana queued by a process that died")
    busy, queued = mention(first), mention(second)
    held = hold_next(world.gpt)
    async with replica_group(tmp_path, world) as group:
        # One job at a time and no line: while `busy` is held at the upstream, `a` takes no
        # other (a worker takes what its gate holds, running and waiting).
        [a] = await group.start("a", MAX_CONCURRENT_JOBS="1", MAX_QUEUE="0")
        assert {d.status for d in await group.deliver(busy, [a])} == {200}
        await let_others_through(world.gpt, already=0)
        assert {d.status for d in await group.deliver(queued, [a])} == {200}
        # Acknowledged means queued: the row was written before the 200 left.
        assert await queued_job(world, queued) == ["todo"]
        a.kill()
        assert await a.exit_code(within=10) == -9

        [b] = await group.start("b")
        await until(lambda: settled(world, queued), within=20, what="b answered the queued event")
        assert_answered_once(world, queued, second)
        assert "outcome=ok" in b.log()

        # The job `a` was running: its turn was recorded, so the lease recovery tells the user
        # once, and the queue's second run of it (its worker died) is dropped as a repeat.
        await until(
            lambda: restarts(world, busy) == 1, within=4 * LEASE_SECONDS, what="the user told"
        )
        await until(
            lambda: "already handled" in b.log(),
            within=STALLED_WITHIN,
            what="the dead worker's job run again, and dropped",
        )
        assert generations_for(world.gpt, first) == 1
        assert restarts(world, busy) == 1
        assert b.running
    held.set()


INSTRUCTION = "make it night"


def click(world: World, payload: dict[str, Any], action: str) -> dict[str, Any]:
    """A click on a button of the result in the mention's thread."""
    [result] = [m for m in world.slack.thread_messages(CHANNEL, thread_of(payload)) if m.blocks]
    [value] = {b["value"] for b in result.blocks[-1]["elements"] if b["action_id"] == action}
    return block_action(action_id=action, value=value, message=as_payload(result), channel=CHANNEL)


def submission(world: World) -> dict[str, Any]:
    """The Refine form the bot opened last, submitted with INSTRUCTION typed in."""
    view = json_param(world.slack.called("views.open")[-1].params["view"])
    values = {"instruction": {"text": {"type": "plain_text_input", "value": INSTRUCTION}}}
    return view_submission(view, values)


@pytest.mark.parametrize("action", ["reroll", "refine"])
async def test_a_click_acknowledged_by_a_process_killed_at_once_is_answered_by_another(
    world: World, tmp_path: Any, action: str
) -> None:
    first, second = prompts(2, f"a banana to {action} after a crash")
    asked, busy = mention(first), mention(second)
    async with replica_group(tmp_path, world) as group:
        [a] = await group.start("a", MAX_CONCURRENT_JOBS="1", MAX_QUEUE="0")
        assert {d.status for d in await group.deliver(asked, [a])} == {200}
        await until(lambda: settled(world, asked), within=20, what="the first image")
        if action == "refine":
            # The form opens at once, in the process clicked (a trigger id lasts 3 s).
            await group.senders["a"].interaction(click(world, asked, "refine"))
            await world.slack.wait_for("views.open")
        # `a` busy with another job takes no other: the click's job stays in the queue.
        held = hold_next(world.gpt)
        assert {d.status for d in await group.deliver(busy, [a])} == {200}
        await let_others_through(world.gpt, already=0)
        clicked = submission(world) if action == "refine" else click(world, asked, action)
        status, _ = await group.senders["a"].interaction(clicked)
        assert status == 200
        assert await queued_job(world, clicked) == ["todo"]
        a.kill()
        assert await a.exit_code(within=10) == -9

        [b] = await group.start("b")
        await until(lambda: len(uploads_in(world.slack, asked)) == 2, within=20, what="b answered")
        said = texts_in(world.slack, asked)
        if action == "reroll":
            assert generations_for(world.gpt, first) == 2
            assert sum("asked for a re-roll" in text for text in said) == 1
        else:
            assert generations_for(world.gpt, INSTRUCTION) == 1
            assert sum(INSTRUCTION in text for text in said) == 1
        # Its row goes once the job has returned (after its reaction), deleted as successful.
        async with asyncio.timeout(10):
            while await queued_job(world, clicked):  # noqa: ASYNC110 - the database is polled
                await asyncio.sleep(0.05)
        assert "outcome=ok" in b.log()
    held.set()


def dropped(replicas: list[Replica]) -> int:
    return sum(replica.log().count("already handled") for replica in replicas)


async def test_an_event_delivered_to_every_replica_is_queued_once(
    world: World, tmp_path: Any
) -> None:
    [prompt] = prompts(1, "a banana queued once")
    payload = mention(prompt)
    async with replica_group(tmp_path, world) as group:
        replicas = await group.start_on_migrated("a", "b", "c")
        deliveries = await group.deliver(payload, replicas)
        assert {d.status for d in deliveries} == {200}, deliveries
        await until(lambda: settled(world, payload), within=20, what="the job ended")
        assert_answered_once(world, payload, prompt)
        await until(lambda: dropped(replicas) >= 2, within=10, what="both repeats dropped")
        assert dropped(replicas) == 2
        taking = "job worker: taking slack.event, slack.command, slack.click, slack.form"
        assert all(taking in r.log() for r in replicas)


async def test_a_slash_command_sent_to_two_replicas_is_queued_and_answered_once(
    world: World, tmp_path: Any
) -> None:
    [prompt] = prompts(1, "a banana asked by command")
    fields = slash_command(prompt, channel=CHANNEL)
    async with replica_group(tmp_path, world) as group:
        replicas = await group.start_on_migrated("a", "b")
        sent = await asyncio.gather(*(group.senders[r.name].command(fields) for r in replicas))
        assert {status for status, _ in sent} == {200}, sent

        def posted() -> list[str]:
            """The messages that say who asked (each one starts the job's thread)."""
            return [m.ts for m in world.slack.messages.values() if prompt in m.text]

        await until(
            lambda: bool(posted()) and any(u.thread_ts in posted() for u in world.slack.uploads),
            within=20,
            what="the command's image in its thread",
        )
        await until(lambda: dropped(replicas) >= 1, within=10, what="the repeat dropped")
        assert len(posted()) == 1
        assert generations_for(world.gpt, prompt) == 1
        assert [u.thread_ts for u in world.slack.uploads] == posted()
        assert dropped(replicas) == 1
