"""The bot's Discord adapter wired to the fakes: real engine, real store file, real discord.py."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from adapters.discord import DiscordAdapter
from bot.bootstrap import open_engine
from bot.config import Settings
from bot.engine import Engine
from bot.ops import FileRoute, Health, Links, Metrics, Phase, WebServer, links_from
from storage.sqlite import SqliteStore
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord import payloads as p
from tests.fakes.discord.http import Call
from tests.fakes.discord.interactions import CHANNEL_MESSAGE, InteractionRecord
from tests.fakes.gptproto import FakeGptProto

API_KEY = "sk-discord-tests"


class ErrorLog(logging.Handler):
    """Collects ERROR records: discord.py only logs a failing handler, so tests must look."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self._expected: list[re.Pattern[str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def expect(self, pattern: str) -> None:
        """An error whose message matches is part of the test, not a failure."""
        self._expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        found = []
        for record in self.records:
            text = record.getMessage()
            if not any(pattern.search(text) for pattern in self._expected):
                found.append(f"{record.name}: {text}\n{record.exc_text or ''}")
        return found


class DiscordBot:
    """Starts (and restarts) the adapter + engine on one database file, against both fakes."""

    def __init__(
        self, discord_fake: FakeDiscord, upstream: FakeGptProto, tmp_path: Path, **settings: Any
    ) -> None:
        self.fake = discord_fake
        self.upstream = upstream
        self.world = discord_fake.world
        self._database = tmp_path / "bot.db"
        self._overrides = settings
        self._stack: AsyncExitStack | None = None
        self.adapter: DiscordAdapter | None = None
        self.engine: Engine | None = None
        self.linked: dict[str, int] = {}  # message id -> turn id, as the adapter linked them
        self.adapter_options: dict[str, Any] = {}  # DiscordAdapter keywords for the next start
        self.web: WebServer | None = None  # the bot's HTTP server, when PUBLIC_URL is set
        self._links = asyncio.Condition()

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "gptproto_api_key": API_KEY,
            "gptproto_base_url": self.upstream.url,
            "upstream_max_attempts": 1,
            "database_url": f"sqlite:///{self._database}",
            "discord_token": self.fake.token,
            "discord_api_base_url": self.fake.api_base,
            "discord_gateway_url": self.fake.gateway_url,
            "discord_guild_ids": str(self.world.guild.id),
            "user_jobs_per_minute": 0,
            "user_jobs_per_day": 0,
        }
        return Settings(_env_file=None, **(values | self._overrides | overrides))  # type: ignore[call-arg]

    async def start(self, **overrides: Any) -> DiscordAdapter:
        settings = self.settings(**overrides)
        async with AsyncExitStack() as stack:
            engine = await stack.enter_async_context(open_engine(settings))
            self._watch_links(engine)
            interrupted = await engine.recover(platforms=("discord",))
            options: dict[str, Any] = {
                "guild_ready_timeout": 0.05,
                "progress_interval": 1.0,
                "links": await self._serve_links(settings, stack),
            }
            adapter = DiscordAdapter(
                engine=engine, settings=settings, **(options | self.adapter_options)
            )
            await adapter.start()
            stack.push_async_callback(adapter.stop)
            await adapter.notify_failed(interrupted)
            self._stack = stack.pop_all()
        self.adapter, self.engine = adapter, engine
        return adapter

    async def _serve_links(self, settings: Settings, stack: AsyncExitStack) -> Links | None:
        """With PUBLIC_URL, the bot's HTTP server serving signed links, on its own connection
        to the database (any process sharing it serves any link), as bootstrap wires it."""
        links = links_from(settings)
        if links is None:
            return None
        store = SqliteStore(self._database)
        await store.open()
        stack.push_async_callback(store.close)
        health = Health(store.ping)
        health.phase = Phase.SERVING  # as the service sets it once every adapter has started
        web = WebServer(
            health=health,
            metrics=Metrics(CollectorRegistry()),
            host="127.0.0.1",
            port=0,
        )
        web.serve_files(FileRoute(links, store))
        await web.start()
        stack.push_async_callback(web.stop)
        self.web = web
        return web.links

    def _watch_links(self, engine: Engine) -> None:
        """Note each result message the adapter links, so a test can wait for the link."""
        link = engine.link_message

        async def link_message(turn_id: int, *, platform: str, message_id: str) -> None:
            await link(turn_id, platform=platform, message_id=message_id)
            async with self._links:
                self.linked[message_id] = turn_id
                self._links.notify_all()

        setattr(engine, "link_message", link_message)  # noqa: B010

    async def stop(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = self.adapter = self.engine = self.web = None

    async def restart(self, **overrides: Any) -> DiscordAdapter:
        """A new process on the same database file: new engine, new adapter, new client."""
        await self.stop()
        return await self.start(**overrides)

    async def prune_everything(self) -> int:
        """Retention as a second process would run it: every turn so far is removed."""
        store = SqliteStore(self._database)
        await store.open()
        try:
            return await store.prune(before=datetime.now(UTC) + timedelta(days=1))
        finally:
            await store.close()

    # -- what a user sees ------------------------------------------------------------------

    async def imagined(
        self, prompt: str = "a green owl", *, user: p.Member | None = None
    ) -> tuple[dict[str, Any], int]:
        """A /imagine result with its thread set up, and its turn id."""
        asker = user or self.world.alice
        record = await self.fake.slash_command("imagine", {"prompt": prompt}, user=asker)
        result = await self.result_of(record)
        await self.thread_of(result)
        return result, turn_of(result)

    async def result_of(self, record: InteractionRecord, *, within: float = 10.0) -> dict[str, Any]:
        """The message an interaction's result was posted as (files attached)."""
        await self.fake.wait_for(
            "webhook_message_edit",
            lambda call: call.params["token"] == record.token and bool(call.files),
            within=within,
        )
        assert record.original_id is not None
        message = self.world.message(record.original_id)
        await self.link_of(message)
        return message

    async def thread_of(self, result: dict[str, Any]) -> dict[str, Any]:
        """The thread opened from a result, once the bot has finished setting it up."""
        await self.fake.wait_for(
            "thread_create", lambda call: call.params["message"] == result["id"]
        )
        await self.fake.wait_for(
            "message_create", lambda call: call.params["channel"] == result["id"]
        )
        return self.world.guild.threads[int(result["id"])]

    async def ephemeral_reply(self, record: InteractionRecord) -> str:
        """The private message an interaction's failure was explained with, after a deferral."""
        [call] = await self.fake.wait_for("followup_create", _for(record))
        assert call.status == 200, call.response
        message = call.response
        assert message["flags"] & p.EPHEMERAL, message
        return str(message["content"])

    async def refusal(self, record: InteractionRecord) -> str:
        """The private answer an interaction was refused with at once, nothing public before it."""
        [call] = await self.fake.wait_for("interaction_callback", _for(record))
        assert call.status == 200, call.response
        assert call.json["type"] == CHANNEL_MESSAGE, call.json
        assert call.json["data"]["flags"] & p.EPHEMERAL, call.json
        return str(call.json["data"]["content"])

    async def reply_to(self, message: dict[str, Any], *, files: bool = True) -> dict[str, Any]:
        """The bot's reply to a user's message (with files, once linked to its turn; or text)."""

        def answers(call: Call) -> bool:
            reference = (call.json or {}).get("message_reference") or {}
            return str(reference.get("message_id")) == message["id"] and bool(call.files) == files

        [call] = await self.fake.wait_for("message_create", answers)
        assert call.status == 200, call.response
        if files:
            await self.link_of(call.response)
        return self.world.message(int(call.response["id"]))

    async def link_of(self, result: dict[str, Any]) -> int:
        """The turn a result message shows, once the adapter has recorded it."""
        async with asyncio.timeout(10), self._links:
            await self._links.wait_for(lambda: result["id"] in self.linked)
        return self.linked[result["id"]]


def turn_of(message: dict[str, Any]) -> int:
    """The turn id a result's first button carries."""
    custom_id = message["components"][0]["components"][0]["custom_id"]
    return int(custom_id.rsplit(":", 1)[1])


def _for(record: InteractionRecord) -> Any:
    return lambda call: call.params.get("token") == record.token


# -- fixtures (imported by the tests/test_discord_*.py modules) ---------------------------------


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture
async def upstream() -> AsyncIterator[FakeGptProto]:
    async with FakeGptProto() as fake:
        yield fake


@pytest.fixture
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
    unexpected = handler.unexpected()
    assert not unexpected, "errors were logged:\n" + "\n".join(unexpected)


@pytest.fixture
async def bot(
    discord_fake: FakeDiscord, upstream: FakeGptProto, tmp_path: Path, error_log: ErrorLog
) -> AsyncIterator[DiscordBot]:
    harness = DiscordBot(discord_fake, upstream, tmp_path)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()
