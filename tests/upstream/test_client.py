"""The client's plumbing: one lazy pool sized by the caller, big bodies off the loop, no leaks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

import bot.upstream.extract
import bot.upstream.gptproto
from bot.errors import ConfigError
from bot.upstream import Content, GenerationRequest, GptProtoClient, Part
from bot.upstream.gptproto import LARGE_BODY
from bot.upstream.pools import Wire
from tests.fakes.gptproto import FakeGptProto

KEY = "sk-client-1f9e77c3"
ROOT = Path(__file__).resolve().parents[2]


def ask(text: str = "a fox") -> GenerationRequest:
    return GenerationRequest("gemini-2.5-flash-image", (Content("user", (Part(text=text),)),))


def test_construction_needs_no_event_loop_and_does_no_io() -> None:
    client = GptProtoClient(base_url="http://127.0.0.1:9", api_key=KEY)

    assert KEY not in repr(client)
    assert "127.0.0.1:9" in repr(client)


@pytest.mark.parametrize("key", ["", "   ", "sk-ключ", "sk-one two", "sk-a\rb"])
def test_unusable_keys_are_a_config_error(key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GptProtoClient(base_url="http://127.0.0.1:9", api_key=key)

    assert "GPTPROTO_API_KEY" in caught.value.user_message


async def test_surrounding_whitespace_of_the_key_is_dropped(fake: FakeGptProto, wire: Wire) -> None:
    client = GptProtoClient(base_url=fake.url, api_key=f"  {KEY}\n", transport=wire)
    await client.generate(ask())
    await client.aclose()

    assert fake.generations[0].header("Authorization") == f"Bearer {KEY}"


@pytest.mark.parametrize("base_url", ["ftp://127.0.0.1:9", "http://127.0.0.1:notaport"])
async def test_an_unusable_base_url_is_a_config_error(base_url: str, wire: Wire) -> None:
    client = GptProtoClient(base_url=base_url, api_key=KEY, transport=wire)

    with pytest.raises(ConfigError) as caught:
        await client.generate(ask())
    await client.aclose()

    assert "GPTPROTO_BASE_URL" in caught.value.user_message


async def test_a_request_is_upstream_while_its_answer_is_pending(
    fake: FakeGptProto, wire: Wire
) -> None:
    fake.latency = 0.3
    client = GptProtoClient(base_url=fake.url, api_key=KEY, transport=wire)
    job = asyncio.create_task(client.generate(ask("a fox in the snow")))

    [request] = await fake.wait_for_requests(1)

    assert not job.done()
    assert request.json["contents"][0]["parts"] == [{"text": "a fox in the snow"}]
    generation = await job
    await client.aclose()
    assert generation.images[0].data == request.produced[0]


def test_importing_the_client_pulls_in_no_platform_sdk_or_sql_driver() -> None:
    code = (
        "import sys, bot.upstream.gptproto\n"
        "banned = ('discord', 'slack_bolt', 'slack_sdk', 'aiosqlite')\n"
        "print(','.join(name for name in banned if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == ""


@pytest.mark.parametrize(("connections", "jobs"), [(2, 5), (40, 45)])
async def test_pool_size_bounds_connections(
    fake: FakeGptProto, connections: int, jobs: int, wire: Wire
) -> None:
    fake.hold = asyncio.Event()
    client = GptProtoClient(
        base_url=fake.url, api_key=KEY, max_connections=connections, transport=wire
    )

    calls = asyncio.gather(*(client.generate(ask()) for _ in range(jobs)))
    await fake.wait_for_in_flight(connections)
    fake.hold.set()
    await calls
    await client.aclose()

    assert fake.peak_in_flight == connections
    assert len(fake.generations) == jobs


async def test_a_large_pool_lets_every_job_run_at_once(fake: FakeGptProto, wire: Wire) -> None:
    fake.hold = asyncio.Event()
    client = GptProtoClient(base_url=fake.url, api_key=KEY, max_connections=500, transport=wire)

    calls = asyncio.gather(*(client.generate(ask()) for _ in range(20)))
    await fake.wait_for_in_flight(20)
    fake.hold.set()
    generations = await calls
    await client.aclose()

    assert fake.peak_in_flight == 20
    serials = {fake.image_serial(generation.images[0].data) for generation in generations}
    assert serials == {request.serial for request in fake.generations}


@pytest.fixture
def decoding_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the threads the answer extractor ran on."""
    threads: list[str] = []
    real_read_answer = bot.upstream.extract.read_answer

    def recording_read_answer(payload: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real_read_answer(payload)

    monkeypatch.setattr(bot.upstream.extract, "read_answer", recording_read_answer)
    return threads


@pytest.mark.parametrize("padding", [LARGE_BODY, 1_500_000])
async def test_large_answers_are_decoded_off_the_event_loop_in_one_hop(
    decoding_threads: list[str], wire: Wire, monkeypatch: pytest.MonkeyPatch, padding: int
) -> None:
    offloaded: list[tuple[str, bool]] = []
    real_offload = bot.upstream.gptproto._offload

    async def recording_offload(large: bool, function: Any, *args: Any) -> Any:
        offloaded.append((function.__name__, large))
        return await real_offload(large, function, *args)

    monkeypatch.setattr(bot.upstream.gptproto, "_offload", recording_offload)
    async with FakeGptProto(image_padding=padding) as fake:
        client = GptProtoClient(base_url=fake.url, api_key=KEY, transport=wire)
        generation = await client.generate(ask())
        await client.aclose()

        assert generation.images[0].data == fake.produced[0]
    assert len(generation.images[0].data) > padding
    assert decoding_threads and threading.main_thread().name not in decoding_threads
    assert offloaded == [("encode_request", False), ("digest", True)]


async def test_small_answers_stay_on_the_loop(
    fake: FakeGptProto, decoding_threads: list[str], wire: Wire
) -> None:
    client = GptProtoClient(base_url=fake.url, api_key=KEY, transport=wire)
    await client.generate(ask())
    await client.aclose()

    assert decoding_threads == [threading.main_thread().name]


async def test_an_injected_http_client_is_used_and_left_open(fake: FakeGptProto) -> None:
    seen: list[str] = []

    async def note(request: httpx.Request) -> None:
        seen.append(request.url.path)

    async with httpx.AsyncClient(event_hooks={"request": [note]}) as http:
        client = GptProtoClient(base_url=fake.url, api_key=KEY, http=http)
        await client.generate(ask())
        await client.aclose()

        assert not http.is_closed
    assert seen == ["/v1beta/models/gemini-2.5-flash-image:generateContent"]


async def test_the_client_reopens_after_aclose(fake: FakeGptProto, wire: Wire) -> None:
    client = GptProtoClient(base_url=fake.url, api_key=KEY, transport=wire)
    await client.generate(ask())
    await client.aclose()

    await client.generate(ask())
    await client.aclose()

    assert len(fake.generations) == 2
