"""One database per test, SQLite file or PostgreSQL, and the fakes every process shares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.gptproto import FakeGptProto
from tests.fakes.slack import FakeSlack
from tests.support.cli import API_KEY
from tests.support.postgres import throwaway_database
from tests.support.replicas import World


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database of the test's own; PostgreSQL fails the test, saying how, without a server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.db'}"
        return
    async with throwaway_database() as dsn:
        yield dsn


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    """The fake gptproto and the fake Slack, on 127.0.0.1 in the test process, and the database."""
    async with FakeGptProto(api_key=API_KEY) as gpt, FakeSlack() as slack:
        yield World(gpt, slack, database_url)
        gpt.hold = None
