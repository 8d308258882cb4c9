"""Every byte from the upstream is bounded before it is held: bombs, endless bodies, big errors."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import resource
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from bot.errors import AnswerTooLarge, ConfigError, RateLimited, UnreadableResponse
from bot.upstream import Content, GenerationRequest, GptProtoClient, Part
from bot.upstream.gptproto import MAX_ANSWER_BYTES, MAX_ERROR_BYTES
from bot.upstream.pools import Wire
from bot.upstream.reading import PIECE
from tests.fakes.gptproto import FakeGptProto, Outcome, RecordedSleeps
from tests.fakes.gptproto_images import make_image
from tests.fakes.gptproto_streams import gzip_of_zeros
from tests.upstream.wires import wire_transport

KEY = "sk-bounded-77d0a3e1"
MEBIBYTE = 1024 * 1024
# Far below the 600 MB a gibibyte bomb must never come near; above the cap it may hold.
MEMORY_CEILING = 200 * MEBIBYTE
# What one bomb may cost in Python memory on either wire: the 64 MiB cap it fills before it is
# refused, one inflated piece, and a few network chunks.
BOMB_CEILING = 70 * MEBIBYTE


def ask() -> GenerationRequest:
    return GenerationRequest("gemini-2.5-flash-image", (Content("user", (Part(text="a fox"),)),))


class _Counted(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, tally: list[int]) -> None:
        self._inner = inner
        self._tally = tally

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._tally[-1] += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class CountingTransport(httpx.AsyncBaseTransport):
    """The wire's real transport, counting the body bytes each response handed to the client."""

    def __init__(self, wire: Wire) -> None:
        self._inner = wire_transport(wire)
        self.received: list[int] = []  # per response, as they came off the connection

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self.received.append(0)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Counted(response.stream, self.received)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class Peak:
    traced: int = 0  # the most Python memory held at once, above the start
    rss: int = 0  # growth of the process's peak resident set


@contextmanager
def measured() -> Iterator[Peak]:
    peak = Peak()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    try:
        yield peak
    finally:
        peak.traced = tracemalloc.get_traced_memory()[1] - start
        tracemalloc.stop()
        peak.rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before


@pytest.fixture
async def counted(
    fake: FakeGptProto, wire: Wire
) -> AsyncIterator[tuple[GptProtoClient, CountingTransport]]:
    transport = CountingTransport(wire)
    async with httpx.AsyncClient(transport=transport) as http:
        client = GptProtoClient(base_url=fake.url, api_key=KEY, http=http, sleep=RecordedSleeps())
        yield client, transport


async def refused(client: GptProtoClient) -> AnswerTooLarge:
    started = time.monotonic()
    async with asyncio.timeout(20):
        with pytest.raises(AnswerTooLarge) as caught:
            await client.generate(ask())
    assert time.monotonic() - started < 10
    return caught.value


async def test_a_gzip_bomb_is_refused_at_the_cap_and_memory_stays_bounded(
    fake: FakeGptProto, counted: tuple[GptProtoClient, CountingTransport]
) -> None:
    client, transport = counted
    bomb = gzip_of_zeros(1024)  # built before measuring: it is the fake's, not the client's
    fake.queue(Outcome.gzip_bomb(1024))

    with measured() as peak:
        error = await refused(client)

    assert MAX_ANSWER_BYTES < error.read <= MAX_ANSWER_BYTES + PIECE
    assert transport.received[0] < len(bomb) // 4  # stopped long before the end
    assert peak.traced < BOMB_CEILING and peak.rss < MEMORY_CEILING
    assert len(fake.generations) == 1  # a second attempt would only be billed again
    assert "over 67 MB" in error.user_message and len(str(error)) < 200


async def test_an_endless_body_is_refused_at_the_cap(
    fake: FakeGptProto, counted: tuple[GptProtoClient, CountingTransport]
) -> None:
    client, transport = counted
    fake.queue(Outcome.endless())

    with measured() as peak:
        error = await refused(client)

    assert MAX_ANSWER_BYTES < error.read <= MAX_ANSWER_BYTES + PIECE
    assert transport.received[0] <= MAX_ANSWER_BYTES + PIECE
    assert peak.traced < MEMORY_CEILING and peak.rss < MEMORY_CEILING
    assert len(fake.generations) == 1


async def test_a_bomb_gzipped_twice_is_still_bounded(
    fake: FakeGptProto, counted: tuple[GptProtoClient, CountingTransport]
) -> None:
    client, _ = counted
    fake.queue(Outcome.encoded(gzip.compress(gzip_of_zeros(1024)), "gzip, gzip"))

    with measured() as peak:
        error = await refused(client)

    assert error.read <= MAX_ANSWER_BYTES + PIECE
    assert peak.traced < MEMORY_CEILING


async def test_an_endless_error_body_is_cut_and_its_status_still_counts(
    fake: FakeGptProto, counted: tuple[GptProtoClient, CountingTransport]
) -> None:
    client, transport = counted
    fake.queue(Outcome.endless(status=503))

    async with asyncio.timeout(10):
        generation = await client.generate(ask())

    assert generation.images[0].data == fake.generations[1].produced[0]
    assert transport.received[0] <= MAX_ERROR_BYTES + 2 * 65536


async def test_an_error_body_within_its_cap_keeps_its_meaning(
    fake: FakeGptProto, wire: Wire
) -> None:
    client = GptProtoClient(base_url=fake.url, api_key=KEY, max_attempts=1, transport=wire)
    fake.queue(Outcome.rate_limited("7s"))

    with pytest.raises(RateLimited) as caught:
        await client.generate(ask())
    await client.aclose()

    assert caught.value.retry_after == 7


def gemini_answer(picture: bytes) -> bytes:
    part = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(picture).decode()}}
    candidate = {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}
    return json.dumps({"candidates": [candidate]}).encode()


def deflate(data: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", lambda data: deflate(data, zlib.MAX_WBITS)),
        ("deflate", lambda data: deflate(data, -zlib.MAX_WBITS)),
        ("gzip, gzip", lambda data: gzip.compress(gzip.compress(data))),
        ("identity", lambda data: data),
    ],
    ids=["gzip", "deflate", "raw-deflate", "gzip-twice", "identity"],
)
async def test_compressed_answers_are_read_whole(
    fake: FakeGptProto, client: GptProtoClient, coding: str, encode: Callable[[bytes], bytes]
) -> None:
    picture = make_image(5, (1024, 1024))
    fake.queue(Outcome.encoded(encode(gemini_answer(picture)), coding))

    generation = await client.generate(ask())

    assert generation.images[0].data == picture
    assert fake.generations[0].header("Accept-Encoding") == "gzip, deflate"


@pytest.mark.parametrize(
    ("body", "coding"),
    [
        (b"\x00" * 1000, "br"),
        (b"\x00" * 1000, "zstd"),
        (gzip.compress(gzip.compress(gzip.compress(b"{}"))), "gzip, gzip, gzip"),
        (b"\x1f\x8b\x08\x00" + b"\xff" * 100, "gzip"),
    ],
    ids=["br", "zstd", "gzip-thrice", "corrupt-gzip"],
)
async def test_codings_not_offered_and_corrupt_streams_are_unreadable(
    fake: FakeGptProto, client: GptProtoClient, body: bytes, coding: str
) -> None:
    fake.queue(Outcome.encoded(body, coding))

    with pytest.raises(UnreadableResponse):
        await client.generate(ask())

    assert len(fake.generations) == 1


async def test_a_declared_length_over_the_cap_is_refused_unread(
    fake: FakeGptProto, wire: Wire
) -> None:
    client = GptProtoClient(base_url=fake.url, api_key=KEY, max_answer_bytes=1000, transport=wire)
    fake.queue(Outcome.raw(200, b" " * 5000))

    with pytest.raises(AnswerTooLarge) as caught:
        await client.generate(ask())
    await client.aclose()

    assert caught.value.read == 0
    assert "over 1 kB" in caught.value.user_message


async def test_an_answer_exactly_at_the_cap_is_read(fake: FakeGptProto, wire: Wire) -> None:
    body = gemini_answer(make_image(9, (256, 256)))
    fake.queue(Outcome.raw(200, body))
    client = GptProtoClient(
        base_url=fake.url, api_key=KEY, max_answer_bytes=len(body), transport=wire
    )

    generation = await client.generate(ask())
    await client.aclose()

    assert generation.images


async def test_images_behind_urls_share_the_answer_cap(fake: FakeGptProto, wire: Wire) -> None:
    picture = make_image(3, (1024, 1024))
    url = fake.host_file("big.png", picture, "image/png")
    fake.queue(Outcome.raw(200, json.dumps({"data": [{"url": url}]}).encode()))
    client = GptProtoClient(
        base_url=fake.url, api_key=KEY, max_answer_bytes=len(picture) // 2, transport=wire
    )

    with pytest.raises(AnswerTooLarge):
        await client.generate(ask())
    await client.aclose()


def test_the_cap_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        GptProtoClient(base_url="http://127.0.0.1:9", api_key=KEY, max_answer_bytes=0)
