"""Several real bot processes (`python -m bot run --role web`) on one database, one fake Slack
and one fake gptproto: what "Never alone" in docs/architecture.md promises, end to end.

Each test runs on a SQLite file and on PostgreSQL (the `database_url` fixture); every process
is a subprocess with its own port and log file, and the test waits for what the fakes record,
always with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from adapters.common import APOLOGY
from bot.engine import INTERRUPTED
from tests.support.cli import run_bot_async
from tests.support.replicas import (
    CHANNEL,
    LEASE_SECONDS,
    START_WITHIN,
    Replica,
    ReplicaGroup,
    World,
    by_pid,
    generations_for,
    hold_next,
    let_others_through,
    mention,
    owner_pid,
    replica_group,
    texts_in,
    thread_of,
    turns,
    until,
    uploads_in,
    write_locked,
)

DONE = "white_check_mark"
FAILED = "x"
RESTARTED = "the bot restarted while making your image"
"""What the Slack adapter posts for a turn failed with bot.engine.INTERRUPTED."""


def prompts(count: int, what: str) -> list[str]:
    """Prompts no other test (or run) uses, so a request at the fake names its event."""
    tag = secrets.token_hex(3)
    return [f"{what} {index} {tag}" for index in range(count)]


def settled(world: World, payload: dict[str, Any]) -> bool:
    """The job of this mention has ended one way or another: a check mark or a cross on the
    user's message, or a refusal whispered to them in its thread."""
    reactions = world.slack.reactions.get((CHANNEL, thread_of(payload)), set())
    whispered = any(e.thread_ts == thread_of(payload) for e in world.slack.ephemerals)
    return bool(reactions & {DONE, FAILED}) or whispered


async def waiting_repeats(world: World, payload: dict[str, Any]) -> int:
    """Copies of an event queued behind its thread's running job (PostgreSQL's job queue):
    the queue refuses a copy only while the first waits, and one that came once the first had
    started waits for it to end, then finds the event answered and is dropped."""
    if not world.postgres:
        return 0
    db = await asyncpg.connect(world.database_url, timeout=5)
    try:
        return int(
            await db.fetchval(
                "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = $1"
                " AND status = 'todo'",
                f"event:{payload['event_id']}",
            )
        )
    finally:
        await db.close()


async def until_async(
    condition: Callable[[], Awaitable[bool]], *, within: float, what: str
) -> None:
    """until() for a condition that must read the database."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"within {within:g} s: {what}")
        await asyncio.sleep(0.05)


def repeats_dropped(group: ReplicaGroup) -> int:
    """Deliveries the processes found already answered (by themselves or another)."""
    lines = ("already handled", "another delivery of it is answered")
    return sum(replica.log().count(line) for replica in group.replicas for line in lines)


def assert_answered_once(world: World, payload: dict[str, Any], prompt: str) -> None:
    """One generation, one upload of its image in the event's thread, nothing to apologise for."""
    assert generations_for(world.gpt, prompt) == 1, prompt
    [request] = [r for r in world.gpt.generations if prompt.encode() in r.body]
    [upload] = uploads_in(world.slack, payload)
    assert upload.data in request.produced
    said = texts_in(world.slack, payload)
    assert not [text for text in said if APOLOGY in text or "restarted" in text], said
    assert not [e for e in world.slack.ephemerals if e.thread_ts == thread_of(payload)]


# -- 0. starting together --------------------------------------------------------------------


async def test_processes_starting_at_once_on_a_new_database_all_serve(
    world: World, tmp_path: Path
) -> None:
    """The Procfile's roles, or replicas, start together on a first deploy: each one creates
    or finds the schema; none exits because another was creating it at the same moment.

    On SQLite the moment is made certain: the write lock of the new file is held (as by the
    first process's migration) until every process has the file open and waits to write.
    """
    [prompt] = prompts(1, "a banana after a crowded start")
    payload = mention(prompt)
    async with replica_group(tmp_path, world) as group:
        if world.postgres:
            replicas = await group.start("a", "b", "c")  # at once, on an empty database
        else:
            with write_locked(world.database_url) as path:
                replicas = await group.launch("a", "b", "c")
                wal = path.with_name(path.name + "-wal")
                await until(
                    lambda: all(replica.has_open(wal) for replica in replicas),
                    within=START_WITHIN,
                    what="every process opened the database",
                )
            await group.serving(replicas)
        await group.deliver(payload, replicas)
        await until(lambda: settled(world, payload), within=20, what="the job ended")
        await until(lambda: repeats_dropped(group) >= 2, within=10, what="2 repeats dropped")
        assert_answered_once(world, payload, prompt)


# -- 1. the same events to every replica ---------------------------------------------------


async def test_every_replica_gets_every_event_and_each_is_answered_once(
    world: World, tmp_path: Path
) -> None:
    names = ("a", "b", "c") if world.postgres else ("a", "b")
    asked = prompts(5, "a banana seen by every replica")
    payloads = [mention(prompt) for prompt in asked]
    async with replica_group(tmp_path, world) as group:
        replicas = await group.start_on_migrated(*names)
        deliveries = await asyncio.gather(*(group.deliver(p, replicas) for p in payloads))
        assert {d.status for sent in deliveries for d in sent} == {200}, deliveries

        await until(
            lambda: all(settled(world, p) for p in payloads), within=20, what="every job ended"
        )
        repeats = (len(replicas) - 1) * len(payloads)
        await until(
            lambda: repeats_dropped(group) >= repeats,
            within=10,
            what=f"{repeats} repeated deliveries dropped",
        )
        assert repeats_dropped(group) == repeats
        for payload, prompt in zip(payloads, asked, strict=True):
            assert_answered_once(world, payload, prompt)
        assert len(world.gpt.generations) == len(payloads)
        assert len(world.slack.uploads) == len(payloads)
        stored = await turns(world.database_url)
        assert sorted(t.prompt for t in stored) == sorted(asked)
        assert {t.status for t in stored} == {"done"}, stored
        assert all(replica.running for replica in replicas)


# -- 2. kill -9 mid-job -----------------------------------------------------------------------


def restarts(world: World, payload: dict[str, Any]) -> int:
    return sum(1 for text in texts_in(world.slack, payload) if RESTARTED in text)


async def test_a_replica_killed_mid_job_is_taken_over_once_by_a_survivor(
    world: World, tmp_path: Path
) -> None:
    names = ("a", "b", "c") if world.postgres else ("a", "b")
    [prompt, *later] = prompts(1 + 2 * (len(names) - 1), "a banana lost to a crash")
    payload = mention(prompt)
    held = hold_next(world.gpt)
    async with replica_group(tmp_path, world) as group:
        replicas = await group.start_on_migrated(*names)
        deliveries = await group.deliver(payload, replicas)
        assert {d.status for d in deliveries} == {200}, deliveries
        await let_others_through(world.gpt, already=0)

        async def repeats_settled() -> bool:
            waiting = await waiting_repeats(world, payload)
            return repeats_dropped(group) + waiting >= len(replicas) - 1

        await until_async(repeats_settled, within=10, what="the repeats dropped or waiting")
        [pending] = await turns(world.database_url)
        assert pending.status == "pending", pending
        victim = by_pid(replicas, owner_pid(pending.owner))  # the process whose job it is

        victim.kill()
        killed = time.monotonic()
        assert await victim.exit_code(within=10) == -9
        survivors = [replica for replica in replicas if replica is not victim]
        await until(
            lambda: restarts(world, payload) >= 1,
            within=2 * LEASE_SECONDS + 3,
            what="a survivor told the user the job was lost",
        )
        told = time.monotonic()
        # Not before the lease ran out: renewed every third of a lease until the kill.
        assert told - killed >= LEASE_SECONDS * 2 / 3 - 0.2
        [failed] = await turns(world.database_url)
        assert (failed.status, failed.error) == ("failed", INTERRUPTED)

        # The survivors still answer, each new event once though every survivor gets it.
        fresh = [mention(text) for text in later]
        for sent in await asyncio.gather(*(group.deliver(p, survivors) for p in fresh)):
            assert {d.status for d in sent} == {200}, sent
        # Slack's retry of the lost event after the crash is a repeat: its claims were settled
        # with the turn, and the user was told to ask again.
        assert {d.status for d in await group.deliver(payload, survivors)} == {200}
        repeats = (len(replicas) - 1) + len(fresh) * (len(survivors) - 1) + len(survivors)
        await until(
            lambda: all(settled(world, p) for p in fresh), within=20, what="the new jobs ended"
        )
        await until(
            lambda: repeats_dropped(group) >= repeats, within=10, what=f"{repeats} repeats dropped"
        )
        for sent_payload, text in zip(fresh, later, strict=True):
            assert_answered_once(world, sent_payload, text)

        # Another round of every survivor's look for lost jobs finds nothing more to say.
        await asyncio.sleep(max(0.0, LEASE_SECONDS + 1 - (time.monotonic() - told)))
        assert restarts(world, payload) == 1, texts_in(world.slack, payload)
        assert generations_for(world.gpt, prompt) == 1  # nobody made the lost image again
        assert uploads_in(world.slack, payload) == []
        stored = {t.prompt: t for t in await turns(world.database_url)}
        assert (stored[prompt].status, stored[prompt].error) == ("failed", INTERRUPTED)
        assert {stored[text].status for text in later} == {"done"}
        assert len(stored) == 1 + len(later)
        assert all(replica.running for replica in survivors)
    held.set()


# -- 3. a rolling restart -----------------------------------------------------------------------


class LoadBalancer:
    """Sends a new mention every `interval` seconds to the processes in rotation, in turn; a
    delivery that is not acknowledged (503 while stopping, a refused connection) goes to the
    next one, as a load balancer or Slack's retries would, until one takes it."""

    def __init__(self, group: ReplicaGroup, rotation: list[Replica], *, interval: float) -> None:
        self.group = group
        self.rotation = rotation
        self.interval = interval
        self.sent: list[tuple[dict[str, Any], str]] = []
        self.taken_by: dict[str, str] = {}
        self.refused: list[str] = []
        self._routes: set[asyncio.Task[None]] = set()
        self._tag = secrets.token_hex(3)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            prompt = f"a banana through a rolling restart {len(self.sent)} {self._tag}"
            payload = mention(prompt)
            self.sent.append((payload, prompt))
            task = asyncio.create_task(self._route(payload, first=len(self.sent)))
            self._routes.add(task)
            # The pace of the traffic, not a wait for anything.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
        await asyncio.gather(*self._routes)

    async def _route(self, payload: dict[str, Any], *, first: int) -> None:
        async with asyncio.timeout(30):
            attempt = first
            while True:
                replica = self.rotation[attempt % len(self.rotation)]
                attempt += 1
                delivery = await self.group.send(payload, replica)
                if delivery.status == 200:
                    self.taken_by[payload["event_id"]] = replica.name
                    return
                self.refused.append(f"{replica.name}: {delivery.status or delivery.error}")
                if attempt % len(self.rotation) == first % len(self.rotation):
                    await asyncio.sleep(0.05)  # every process refused: try the round again


def jobs_done(replica: Replica) -> int:
    return replica.log().count("outcome=ok")


def working(replica: Replica) -> Callable[[], bool]:
    """Whether the process has answered a couple of events (its own jobs, in its log)."""
    return lambda: jobs_done(replica) >= 2


async def test_a_rolling_restart_loses_no_event_and_answers_each_once(
    world: World, tmp_path: Path
) -> None:
    world.gpt.latency = 0.3  # jobs are in progress when a process is told to stop
    async with replica_group(tmp_path, world) as group:
        a, b = await group.start_on_migrated("a", "b")
        rotation = [a, b]
        balancer = LoadBalancer(group, rotation, interval=0.1)
        stop = asyncio.Event()
        traffic = asyncio.create_task(balancer.run(stop))
        try:
            await until(lambda: jobs_done(a) >= 2 and jobs_done(b) >= 2, within=15, what="jobs")
            for old, new_name in ((a, "a2"), (b, "b2")):
                old.terminate()
                assert await old.exit_code(within=25) == 0
                rotation.remove(old)
                [new] = await group.start(new_name)  # on the same database
                rotation.append(new)
                await until(working(new), within=15, what=f"{new_name} answers events")
        finally:
            stop.set()
            await traffic
        sent = balancer.sent
        await until(
            lambda: all(settled(world, p) for p, _ in sent),
            within=20,
            what=f"all {len(sent)} jobs ended",
        )
        for payload, prompt in sent:
            assert_answered_once(world, payload, prompt)
        assert len(world.slack.uploads) == len(sent)
        stored = await turns(world.database_url)
        assert sorted(t.prompt for t in stored) == sorted(p for _, p in sent)
        assert {t.status for t in stored} == {"done"}, [t for t in stored if t.status != "done"]
        for stopped in (a, b):
            assert "cancelling" not in stopped.log()  # each finished its jobs before it exited
        assert set(balancer.taken_by.values()) == {"a", "b", "a2", "b2"}
        print(f"{len(sent)} events; {len(balancer.refused)} deliveries refused and sent on")


async def test_events_acknowledged_just_before_a_sigterm_are_still_answered(
    world: World, tmp_path: Path
) -> None:
    """Slack delivers an event once it has the 200: a process told to stop right after it
    acknowledged events must still answer them (it finishes its jobs), for nobody else will."""
    asked = prompts(4, "a banana acknowledged at the stop")
    payloads = [mention(prompt) for prompt in asked]
    async with replica_group(tmp_path, world) as group:
        a, b = await group.start_on_migrated("a", "b")
        sent = await asyncio.gather(*(group.send(payload, a) for payload in payloads))
        assert {d.status for d in sent} == {200}, sent
        a.terminate()  # as soon as the acknowledgements are in
        assert await a.exit_code(within=25) == 0
        await until(
            lambda: all(settled(world, p) for p in payloads), within=20, what="all jobs ended"
        )
        for payload, prompt in zip(payloads, asked, strict=True):
            refused = [e.text for e in world.slack.ephemerals if e.thread_ts == thread_of(payload)]
            assert refused == [], f"{prompt!r} was acknowledged, then refused: {refused}"
            assert_answered_once(world, payload, prompt)
        assert b.running


# -- 4. the terminal next to a web process ------------------------------------------------------


async def test_the_terminal_and_a_web_process_leave_each_others_jobs_alone(
    world: World, tmp_path: Path
) -> None:
    """`python -m bot imagine`, and a second web process starting, while a web process on the
    same database has a job in flight: nobody fails a job that is not theirs."""
    web_prompt, cli_prompt = prompts(2, "a banana beside the terminal")
    payload = mention(web_prompt)
    held = hold_next(world.gpt)
    async with replica_group(tmp_path, world) as group:
        [web] = await group.start("web")
        assert {d.status for d in await group.deliver(payload, [web])} == {200}
        await let_others_through(world.gpt, already=0)
        held_since = time.monotonic()

        out = tmp_path / "cli.png"
        code, output = await run_bot_async(
            tmp_path, "imagine", cli_prompt, "-o", str(out), **world.settings()
        )
        assert code == 0, output
        [cli_request] = [r for r in world.gpt.generations if cli_prompt.encode() in r.body]
        assert out.read_bytes() in cli_request.produced
        # A second web process starts (and looks for lost jobs) while the first one's is held.
        await group.start("web2")

        # Held for two lease periods: renewed, and looked at by both processes' recovery.
        await asyncio.sleep(max(0.0, 2 * LEASE_SECONDS + 0.5 - (time.monotonic() - held_since)))
        stored = {t.prompt: t for t in await turns(world.database_url)}
        assert (stored[web_prompt].platform, stored[web_prompt].status) == ("slack", "pending")
        assert (stored[cli_prompt].platform, stored[cli_prompt].status) == ("cli", "done")
        assert restarts(world, payload) == 0

        held.set()
        await until(lambda: settled(world, payload), within=20, what="the web job ended")
        assert_answered_once(world, payload, web_prompt)
        stored = {t.prompt: t for t in await turns(world.database_url)}
        assert {t.status for t in stored.values()} == {"done"}, stored
        assert len(stored) == 2
        assert all(replica.running for replica in group.replicas)
