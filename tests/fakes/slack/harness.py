"""The Slack adapter running for real: mounted on a local HTTP server, talking to FakeSlack."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from adapters.slack import SlackAdapter
from bot.config import Settings
from bot.engine import Engine
from tests.fakes.local_server import serve_locally
from tests.fakes.slack.events import EventSender, event_callback, message_event
from tests.fakes.slack.web_api import FakeSlack
from tests.fakes.slack.workspace import Message

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
    *, fake: FakeSlack, engine: Engine, socket_mode: bool = False, **overrides: Any
) -> AsyncIterator[SlackBot]:
    """Start the adapter (HTTP server on port 0, or Socket Mode) and stop it afterwards."""
    errors = _ErrorLog()
    logging.getLogger().addHandler(errors)
    adapter = SlackAdapter(
        engine=engine, settings=slack_settings(fake, socket_mode=socket_mode, **overrides)
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


@pytest.fixture
async def slack(make_engine: EngineFactory) -> AsyncIterator[SlackBot]:
    """The adapter over HTTP on a fresh fake workspace; fails the test on unexpected errors."""
    engine = await make_engine()
    async with FakeSlack() as fake, running_slack(fake=fake, engine=engine) as bot:
        yield bot
        assert unexpected_errors(bot) == []
