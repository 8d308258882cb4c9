"""The Slack adapter running for real: mounted on a local HTTP server, talking to FakeSlack."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from adapters.slack import SlackAdapter
from bot.config import Settings
from bot.engine import Engine, JobQueue
from tests.fakes.local_server import serve_locally
from tests.fakes.slack.events import (
    EventSender,
    block_action,
    event_callback,
    message_event,
    view_submission,
)
from tests.fakes.slack.web_api import FakeSlack
from tests.fakes.slack.workspace import Ephemeral, Message, json_param

SIGNING_SECRET = "test-signing-secret"

EngineFactory = Callable[..., Awaitable[Engine]]
CHANNEL = "C0001"
USER = "UALICE"


class _ErrorLog(logging.Handler):
    """Keeps ERROR records: errors inside listeners and background jobs are only logged."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class SlackBot:
    """A running adapter plus the means to talk to it the way Slack does."""

    fake: FakeSlack
    adapter: SlackAdapter
    engine: Engine
    sender: EventSender
    url: str
    errors: list[logging.LogRecord] = field(default_factory=list)

    async def deliver(self, event: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Deliver an event in its Events API envelope; returns the envelope."""
        payload = event_callback(event, event_id=kwargs.pop("event_id", None))
        status, _ = await self.sender.event(payload, **kwargs)
        assert status == 200, status
        return payload

    async def mention(self, text: str, **event_fields: Any) -> dict[str, Any]:
        """A user mentions the bot; returns the event."""
        event = message_event(f"<@UBOT> {text}", kind="app_mention", **event_fields)
        await self.deliver(event)
        return event

    async def settle(self) -> None:
        """Wait until every job started so far has ended."""
        await self.adapter.idle()

    def said(self, thread_ts: str, channel: str = CHANNEL) -> list[str]:
        """The texts the bot left in a thread, oldest first."""
        return [m.text for m in self.fake.thread_messages(channel, thread_ts)]

    def result_message(self, thread_ts: str, channel: str = CHANNEL) -> Message:
        """The latest message with buttons in a thread."""
        found = [m for m in self.fake.thread_messages(channel, thread_ts) if m.blocks]
        assert found, f"no result message in {channel}/{thread_ts}: {self.said(thread_ts)}"
        return found[-1]

    def whispered(self, user: str = USER) -> list[Ephemeral]:
        """What the bot said to that user alone, oldest first."""
        return [e for e in self.fake.ephemerals if e.user == user]

    async def click(
        self, action_id: str, message: Message, *, user: str = USER, value: str | None = None
    ) -> dict[str, Any]:
        """A user presses a button on a result message (its own value unless one is given)."""
        if value is None:
            [value] = {
                b["value"] for b in message.blocks[-1]["elements"] if b["action_id"] == action_id
            }
        payload = block_action(
            action_id=action_id, value=value, message=as_payload(message), user=user
        )
        status, _ = await self.sender.interaction(payload)
        assert status == 200, status
        return payload

    async def opened_form(self) -> dict[str, Any]:
        """The view of the latest Refine form the bot opened, once it has opened one."""
        calls = await self.fake.wait_for("views.open")
        view: dict[str, Any] = json_param(calls[-1].params["view"])
        return view

    async def submit(
        self, view: dict[str, Any], instruction: str, *, user: str = USER
    ) -> tuple[int, str]:
        """A user submits a Refine form with that instruction typed in; returns (status, body)."""
        values = {"instruction": {"text": {"type": "plain_text_input", "value": instruction}}}
        return await self.sender.interaction(view_submission(view, values, user=user))


def as_payload(message: Message) -> dict[str, Any]:
    """How a posted message appears inside an interaction payload."""
    return {
        "type": "message",
        "ts": message.ts,
        "thread_ts": message.thread_ts,
        "text": message.text,
        "user": "UBOT",
        "bot_id": "BBOT",
        "blocks": message.blocks,
    }


def slack_settings(fake: FakeSlack, *, socket_mode: bool = False, **overrides: Any) -> Settings:
    """Settings that point the adapter at the fake, and at nothing from the environment."""
    values: dict[str, Any] = {
        "slack_bot_token": fake.bot_token,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_app_token": fake.app_token if socket_mode else None,
        "slack_api_url": fake.api_url,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def running_slack(
    *,
    fake: FakeSlack,
    engine: Engine,
    socket_mode: bool = False,
    jobs: JobQueue | None = None,
    **overrides: Any,
) -> AsyncIterator[SlackBot]:
    """Start the adapter (HTTP server on port 0, or Socket Mode) and stop it afterwards."""
    errors = _ErrorLog()
    logging.getLogger().addHandler(errors)
    adapter = SlackAdapter(
        engine=engine,
        settings=slack_settings(fake, socket_mode=socket_mode, **overrides),
        jobs=jobs,
    )
    server = web.Application()
    adapter.mount(server)
    runner, port = await serve_locally(server, access_log=None)
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        await adapter.start()
        async with EventSender(url, secret=SIGNING_SECRET) as sender:
            yield SlackBot(fake, adapter, engine, sender, url, errors.records)
    finally:
        await adapter.stop()
        await runner.cleanup()
        logging.getLogger().removeHandler(errors)


def unexpected_errors(bot: SlackBot, *, allowed: tuple[str, ...] = ()) -> list[str]:
    """ERROR log lines other than the allowed ones (matched on the message)."""
    lines = [record.getMessage() for record in bot.errors]
    return [line for line in lines if not any(text in line for text in allowed)]


StartSlack = Callable[..., Awaitable[SlackBot]]


@pytest.fixture
async def start_slack(make_engine: EngineFactory) -> AsyncIterator[StartSlack]:
    """Start the adapter on an engine made with these settings overrides (`adapter=` holds the
    adapter's own); fails the test on unexpected errors."""
    started: list[SlackBot] = []
    async with AsyncExitStack() as stack:

        async def start(
            *, adapter: dict[str, Any] | None = None, **engine_settings: Any
        ) -> SlackBot:
            engine = await make_engine(**engine_settings)
            fake = await stack.enter_async_context(FakeSlack())
            bot = await stack.enter_async_context(
                running_slack(fake=fake, engine=engine, **(adapter or {}))
            )
            started.append(bot)
            return bot

        yield start
        for bot in started:
            assert unexpected_errors(bot) == []


@pytest.fixture
async def slack(make_engine: EngineFactory) -> AsyncIterator[SlackBot]:
    """The adapter over HTTP on a fresh fake workspace; fails the test on unexpected errors."""
    engine = await make_engine()
    async with FakeSlack() as fake, running_slack(fake=fake, engine=engine) as bot:
        yield bot
        assert unexpected_errors(bot) == []


@pytest.fixture
async def slack_socket(make_engine: EngineFactory) -> AsyncIterator[SlackBot]:
    """The adapter over Socket Mode, connected to a fresh fake; fails on unexpected errors."""
    engine = await make_engine()
    async with (
        FakeSlack() as fake,
        running_slack(fake=fake, engine=engine, socket_mode=True) as bot,
    ):
        await fake.wait_for("socket.connect")
        yield bot
        assert unexpected_errors(bot) == []
