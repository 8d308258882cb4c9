"""The wire under test: every suite here that talks to the fake runs once per transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import get_args

import pytest

from bot.upstream import GptProtoClient
from bot.upstream.pools import Wire
from tests.fakes.gptproto import FakeGptProto, RecordedSleeps

TEST_API_KEY = "sk-test-upstream-key"


@pytest.fixture(params=get_args(Wire))
def wire(request: pytest.FixtureRequest) -> Wire:
    """The transport the client is built with: aiohttp (the default) or httpx's own."""
    value: Wire = request.param
    return value


@pytest.fixture
async def client(gptproto: FakeGptProto, wire: Wire) -> AsyncIterator[GptProtoClient]:
    """The real upstream client on the fake, on this wire; retries record their delays."""
    upstream = GptProtoClient(
        base_url=gptproto.url, api_key=TEST_API_KEY, sleep=RecordedSleeps(), transport=wire
    )
    yield upstream
    await upstream.aclose()
