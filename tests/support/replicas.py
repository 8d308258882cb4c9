"""Several real `python -m bot run --role web` processes on one database and one set of fakes.

    async with replica_group(tmp_path, world) as group:
        a, b = await group.start("a", "b")           # started at once, each until /healthz is 200
        await group.deliver(payload, [a, b])         # the same signed event to each, at once
        a.kill()                                     # SIGKILL: no shutdown, leases left behind

Every process binds a free port of its own (PORT=0, read back from its log), writes its output
to `<tmp_path>/<name>.log`, and is killed (with the image workers of its process group) when
the group ends; when the block fails, the logs are printed, so they show under the failing
test. The settings hold test tokens only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from tests.fakes.gptproto import FakeGptProto
from tests.fakes.slack import EventSender, FakeSlack, Upload, event_callback, message_event
from tests.support.cli import API_KEY, LISTENING, SIGNING_SECRET, env

LEASE_SECONDS = 3.0
"""JOB_LEASE_SECONDS of every process: the minimum, so takeovers happen within seconds."""
START_WITHIN = 30.0
"""Seconds a process may take to answer /healthz (two shared cores, several interpreters)."""
CHANNEL = "C0001"


@dataclass(frozen=True)
class World:
    """What every process of a test shares: the fakes and the database."""

    gpt: FakeGptProto
    slack: FakeSlack
    database_url: str

    @property
    def postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    def settings(self, **extra: str) -> dict[str, str]:
        """The environment of a process on this world, before its own PORT."""
        return {
            "GPTPROTO_API_KEY": API_KEY,
            "GPTPROTO_BASE_URL": self.gpt.url,
            "UPSTREAM_MAX_ATTEMPTS": "1",
            "SLACK_BOT_TOKEN": self.slack.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": self.slack.api_url,
            "DATABASE_URL": self.database_url,
            "JOB_LEASE_SECONDS": str(LEASE_SECONDS),
            "USER_JOBS_PER_MINUTE": "0",
            "USER_JOBS_PER_DAY": "0",
            "IMAGE_WORKERS": "1",
            "SHUTDOWN_GRACE_SECONDS": "20",
            **extra,
        }


class Replica:
    """One bot process: its port, its log file, and the means to stop it."""

    def __init__(self, name: str, tmp_path: Path, settings: Mapping[str, str]) -> None:
        self.name = name
        self.tmp_path = tmp_path
        # PORT=0: the process binds a free port itself and logs it. A port picked here and
        # bound there a second later could meanwhile be some outgoing connection's.
        self.port: int | None = None
        self.log_path = tmp_path / f"{name}.log"
        self.settings = {**settings, "PORT": "0"}
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        assert self.port is not None, f"{self.name} has not started listening"
        return f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    async def launch(self) -> Replica:
        """Start the process; it serves once `healthy` returns."""
        with self.log_path.open("ab") as log:
            # A session of its own: the group's cleanup ends its image workers with it.
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", "--role", "web",
                env=env(self.tmp_path, **self.settings), cwd=self.tmp_path,
                stdout=log, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        return self

    def has_open(self, path: Path) -> bool:
        """Whether the process holds that file open now (Linux: /proc/<pid>/fd)."""
        try:
            fds = list(Path(f"/proc/{self.pid}/fd").iterdir())
        except OSError:
            return False
        for fd in fds:
            with contextlib.suppress(OSError):
                if fd.readlink() == path:
                    return True
        return False

    async def healthy(self, session: aiohttp.ClientSession) -> None:
        """Wait, with a deadline, until the process logs its port and /healthz answers 200."""
        async with asyncio.timeout(START_WITHIN):
            while self.port is None or not await self._answers(session):
                if not self.running:
                    code = None if self.process is None else self.process.returncode
                    raise AssertionError(f"{self.name} exited (code {code}) before serving")
                if self.port is None and (found := LISTENING.search(self.log())):
                    self.port = int(found.group(1))
                    continue
                await asyncio.sleep(0.05)

    async def _answers(self, session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(f"{self.url}/healthz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    def kill(self) -> None:
        """SIGKILL the bot process itself, as a crash or an OOM kill would."""
        if self.running:
            os.kill(self.pid, signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM: the bot finishes its jobs in progress, then exits."""
        if self.running:
            os.kill(self.pid, signal.SIGTERM)

    async def exit_code(self, within: float) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), within)

    async def reap(self) -> None:
        """Kill whatever of this process's session is left (the bot, its image workers)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # the group of the process started here
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 10)


@dataclass
class Delivery:
    """One delivery of an event to one process: its HTTP status, or the error it met."""

    replica: str
    status: int | None
    error: str | None = None


@dataclass
class ReplicaGroup:
    """The processes of one test and a signed sender for each."""

    tmp_path: Path
    world: World
    session: aiohttp.ClientSession
    replicas: list[Replica] = field(default_factory=list)
    senders: dict[str, EventSender] = field(default_factory=dict)

    async def launch(self, *names: str, **extra: str) -> list[Replica]:
        """Start these processes at once, without waiting for them to serve."""
        made = [Replica(name, self.tmp_path, self.world.settings(**extra)) for name in names]
        self.replicas.extend(made)
        await asyncio.gather(*(replica.launch() for replica in made))
        return made

    async def serving(self, replicas: Sequence[Replica]) -> list[Replica]:
        """Wait until every one of these processes answers /healthz; each gets a sender."""
        await asyncio.gather(*(replica.healthy(self.session) for replica in replicas))
        for replica in replicas:
            sender = EventSender(replica.events_url, secret=SIGNING_SECRET)
            self.senders[replica.name] = await sender.__aenter__()
        return list(replicas)

    async def start(self, *names: str, **extra: str) -> list[Replica]:
        """Start these processes at once; returns them once every one serves."""
        return await self.serving(await self.launch(*names, **extra))

    async def start_on_migrated(self, first: str, *rest: str, **extra: str) -> list[Replica]:
        """Start `first` alone (it creates the schema), then the rest at once."""
        return [
            *await self.start(first, **extra),
            *(await self.start(*rest, **extra) if rest else []),
        ]

    async def send(self, payload: dict[str, Any], replica: Replica) -> Delivery:
        """POST one event to one process; a refused connection is reported, not raised."""
        try:
            status, _ = await self.senders[replica.name].event(payload)
        except aiohttp.ClientError as exc:
            return Delivery(replica.name, None, f"{type(exc).__name__}: {exc}")
        return Delivery(replica.name, status)

    async def deliver(self, payload: dict[str, Any], to: Iterable[Replica]) -> list[Delivery]:
        """The same event to each of these processes at once."""
        return list(await asyncio.gather(*(self.send(payload, replica) for replica in to)))

    def logs(self) -> str:
        parts = []
        for replica in self.replicas:
            code = None if replica.process is None else replica.process.returncode
            parts.append(f"----- {replica.name} (pid {replica.process and replica.pid}, "
                         f"exit {code}, {replica.log_path}) -----\n{replica.log()}")  # fmt: skip
        return "\n".join(parts)

    async def close(self) -> None:
        for sender in self.senders.values():
            await sender.__aexit__(None, None, None)
        await asyncio.gather(*(replica.reap() for replica in self.replicas))


@asynccontextmanager
async def replica_group(tmp_path: Path, world: World) -> AsyncIterator[ReplicaGroup]:
    """Processes started through the group; all killed at the end, their logs printed on failure."""
    async with aiohttp.ClientSession() as session:
        group = ReplicaGroup(tmp_path, world, session)
        try:
            yield group
        except BaseException:
            print(group.logs())
            raise
        finally:
            await group.close()


# -- events and what became of them -------------------------------------------------------------


def mention(text: str) -> dict[str, Any]:
    """A signed-to-be `app_mention` of the bot in the channel, in its Events API envelope."""
    return event_callback(message_event(f"<@UBOT> {text}", kind="app_mention", channel=CHANNEL))


def thread_of(payload: dict[str, Any]) -> str:
    """The thread a mention is answered in: the mention's own ts."""
    return str(payload["event"]["ts"])


def uploads_in(slack: FakeSlack, payload: dict[str, Any]) -> list[Upload]:
    return [u for u in slack.uploads if u.thread_ts == thread_of(payload)]


def texts_in(slack: FakeSlack, payload: dict[str, Any]) -> list[str]:
    """What the bot posted in the mention's thread (including deleted queue notices)."""
    return [
        m.text
        for m in slack.messages.values()
        if m.channel == CHANNEL and m.thread_ts == thread_of(payload)
    ]


def generations_for(gpt: FakeGptProto, prompt: str) -> int:
    """Generation requests that carried this prompt (each test's prompts are unique)."""
    return sum(1 for request in gpt.generations if prompt.encode() in request.body)


async def until(condition: Callable[[], bool], *, within: float, what: str) -> None:
    """Wait, with a deadline, until condition() is true; the message says what never came."""
    try:
        async with asyncio.timeout(within):
            while not condition():  # noqa: ASYNC110 - the fakes record from other tasks
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"within {within:g} s: {what}") from None


def hold_next(gpt: FakeGptProto) -> asyncio.Event:
    """Hold the next generation request the fake gets until the returned event is set.

    The fake reads `hold` as a request arrives: once that request is in flight the test puts
    `gpt.hold = None` back (see `let_others_through`), and only that one stays held.
    """
    held = asyncio.Event()
    gpt.hold = held
    return held


async def let_others_through(gpt: FakeGptProto, *, already: int) -> None:
    """Wait for the held request to be in flight, then answer every later one at once."""
    await gpt.wait_for_in_flight(already + 1, within=20)
    gpt.hold = None


# -- the database, read the way an operator would ------------------------------------------------


@dataclass(frozen=True)
class TurnRow:
    id: int
    platform: str
    status: str
    prompt: str
    error: str | None
    owner: str | None


_TURNS = "SELECT id, platform, status, prompt, error, owner FROM turns ORDER BY id"


async def turns(database_url: str) -> list[TurnRow]:
    """Every turn in the database, oldest first, read with plain SQL."""
    if database_url.startswith(("postgresql://", "postgres://")):
        db = await asyncpg.connect(database_url, timeout=5)
        try:
            return [TurnRow(*row) for row in await db.fetch(_TURNS)]
        finally:
            await db.close()
    path = database_url.removeprefix("sqlite:///")

    def read() -> list[TurnRow]:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            db.execute("PRAGMA busy_timeout = 5000")
            return [TurnRow(*row) for row in db.execute(_TURNS)]

    return await asyncio.to_thread(read)


@contextlib.contextmanager
def write_locked(database_url: str) -> Iterator[Path]:
    """A new SQLite database (WAL, no tables yet) whose write lock is held for the block, as by
    a process in the middle of a write: others read it meanwhile, and wait to write."""
    path = Path(database_url.removeprefix("sqlite:///"))
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            yield path
        finally:
            db.execute("ROLLBACK")


def owner_pid(owner: str | None) -> int | None:
    """The pid in an instance id (`host:pid:random`)."""
    if owner is None:
        return None
    parts = owner.rsplit(":", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def by_pid(replicas: Sequence[Replica], pid: int | None) -> Replica:
    found = [replica for replica in replicas if replica.running and replica.pid == pid]
    assert found, f"no running process has pid {pid}"
    return found[0]
