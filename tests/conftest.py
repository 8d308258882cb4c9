"""Fixtures shared by the suites: the upstream fake and engines wired as in production."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from bot.bootstrap import open_engine
from bot.config import Settings
from bot.engine import Engine
from bot.upstream import GptProtoClient
from tests.fakes.gptproto import FakeGptProto, RecordedSleeps

# The platform harnesses' fixtures (bot, discord_fake, upstream, error_log, slack).
pytest_plugins = ["tests.fakes.discord.harness", "tests.fakes.slack.harness"]

TEST_API_KEY = "sk-test-conftest-key"

EngineFactory = Callable[..., Awaitable[Engine]]


def test_settings(fake: FakeGptProto, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for an engine on the fake upstream and a database in tmp_path; no .env read."""
    values: dict[str, Any] = {
        "gptproto_api_key": TEST_API_KEY,
        "gptproto_base_url": fake.url,
        "database_url": f"sqlite:///{tmp_path / 'bot.db'}",
        "upstream_max_attempts": 2,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


@pytest.fixture
async def gptproto() -> AsyncIterator[FakeGptProto]:
    """The upstream fake on 127.0.0.1, a fresh one per test."""
    async with FakeGptProto() as fake:
        yield fake


@pytest.fixture
def fake(gptproto: FakeGptProto) -> FakeGptProto:
    """The upstream fake, under the short name the upstream and engine suites use."""
    return gptproto


@pytest.fixture
async def client(gptproto: FakeGptProto) -> AsyncIterator[GptProtoClient]:
    """The real upstream client on the fake; retries record their delays instead of waiting."""
    upstream = GptProtoClient(base_url=gptproto.url, api_key=TEST_API_KEY, sleep=RecordedSleeps())
    yield upstream
    await upstream.aclose()


@pytest.fixture
async def make_engine(gptproto: FakeGptProto, tmp_path: Path) -> AsyncIterator[EngineFactory]:
    """Builds started engines (real SQLite store, real client) through the composition root.

    Each call opens a new engine on the same database file, which is how a test restarts the
    bot; every engine is closed when the test ends.
    """
    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> Engine:
            settings = test_settings(gptproto, tmp_path, **overrides)
            engine = await stack.enter_async_context(open_engine(settings))
            await engine.recover(platforms=("discord", "slack", "cli"))
            return engine

        yield make
