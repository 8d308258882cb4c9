"""Transient failures are retried with bounded, server-honouring backoff; others are not."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from bot.errors import RateLimited, Unavailable, UpstreamTimeout
from bot.upstream import Content, GenerationRequest, GptProtoClient, Part
from bot.upstream.pools import Wire
from bot.upstream.retry import parse_duration, parse_retry_after
from tests.fakes.gptproto import FakeGptProto, Outcome, RecordedSleeps

KEY = "sk-retry-0c4d11ab"


def ask() -> GenerationRequest:
    return GenerationRequest(
        model="gemini-2.5-flash-image", contents=(Content("user", (Part(text="a fox"),)),)
    )


class Observer:
    def __init__(self) -> None:
        self.attempts: list[str] = []
        self.retries: list[tuple[str, float]] = []

    def on_attempt(self, *, seconds: float, outcome: str) -> None:
        assert seconds >= 0
        self.attempts.append(outcome)

    def on_retry(self, *, reason: str, delay: float) -> None:
        self.retries.append((reason, delay))


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


@pytest.fixture
async def client(
    fake: FakeGptProto, sleeps: RecordedSleeps, wire: Wire
) -> AsyncIterator[GptProtoClient]:
    upstream = GptProtoClient(base_url=fake.url, api_key=KEY, sleep=sleeps, transport=wire)
    yield upstream
    await upstream.aclose()


async def test_overloaded_then_image(
    fake: FakeGptProto, sleeps: RecordedSleeps, wire: Wire
) -> None:
    observer = Observer()
    client = GptProtoClient(
        base_url=fake.url, api_key=KEY, sleep=sleeps, observer=observer, transport=wire
    )
    fake.queue(Outcome.overloaded(), Outcome.image())

    generation = await client.generate(ask())
    await client.aclose()

    second = fake.generations[1]
    assert len(fake.generations) == 2
    assert generation.images[0].data == second.produced[0]
    [delay] = sleeps.delays
    assert 0.5 <= delay <= 1.0  # the first backoff step, jittered
    assert observer.attempts == ["http_503", "ok"]
    assert observer.retries == [("http_503", delay)]


async def test_retry_delay_from_retry_info_is_honoured(
    fake: FakeGptProto, client: GptProtoClient, sleeps: RecordedSleeps
) -> None:
    fake.queue(Outcome.rate_limited("2s"), Outcome.image())

    await client.generate(ask())

    assert sleeps.delays == [2.0]
    assert len(fake.generations) == 2


async def test_retry_after_seconds_header_is_honoured(
    fake: FakeGptProto, client: GptProtoClient, sleeps: RecordedSleeps
) -> None:
    fake.queue(Outcome.rate_limited(None, retry_after="3"), Outcome.image())

    await client.generate(ask())

    assert sleeps.delays == [3.0]


async def test_retry_after_date_header_is_honoured(
    fake: FakeGptProto, client: GptProtoClient, sleeps: RecordedSleeps
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    fake.queue(Outcome.overloaded(retry_after=when), Outcome.image())

    await client.generate(ask())

    [delay] = sleeps.delays
    assert 17.0 <= delay <= 20.0


async def test_the_longer_of_header_and_retry_info_wins(
    fake: FakeGptProto, client: GptProtoClient, sleeps: RecordedSleeps
) -> None:
    fake.queue(Outcome.rate_limited("1.5s", retry_after="7"), Outcome.image())

    await client.generate(ask())

    assert sleeps.delays == [7.0]


async def test_a_real_short_server_delay_is_waited(fake: FakeGptProto, wire: Wire) -> None:
    client = GptProtoClient(base_url=fake.url, api_key=KEY, transport=wire)
    fake.queue(Outcome.rate_limited("0.2s"), Outcome.image())

    started = time.monotonic()
    await client.generate(ask())
    await client.aclose()

    assert time.monotonic() - started >= 0.2
    assert len(fake.generations) == 2


async def test_backoff_grows_exponentially_up_to_the_cap(
    fake: FakeGptProto, sleeps: RecordedSleeps, wire: Wire
) -> None:
    client = GptProtoClient(
        base_url=fake.url, api_key=KEY, max_attempts=4, max_backoff=3.0, sleep=sleeps,
        random=lambda: 1.0, transport=wire,
    )  # fmt: skip
    fake.queue(*[Outcome.server_error(500)] * 4)

    with pytest.raises(Unavailable):
        await client.generate(ask())
    await client.aclose()

    assert sleeps.delays == [1.0, 2.0, 3.0]
    assert len(fake.generations) == 4


async def test_attempts_are_bounded(fake: FakeGptProto, sleeps: RecordedSleeps, wire: Wire) -> None:
    client = GptProtoClient(
        base_url=fake.url, api_key=KEY, max_attempts=2, sleep=sleeps, transport=wire
    )
    fake.queue(*[Outcome.overloaded()] * 5)

    with pytest.raises(Unavailable):
        await client.generate(ask())
    await client.aclose()

    assert len(fake.generations) == 2
    assert fake.pending == 3


async def test_a_delay_beyond_the_budget_gives_up_at_once(
    fake: FakeGptProto, sleeps: RecordedSleeps, wire: Wire
) -> None:
    client = GptProtoClient(
        base_url=fake.url, api_key=KEY, max_total=10.0, sleep=sleeps, transport=wire
    )
    fake.queue(Outcome.rate_limited("53s"), Outcome.image())

    with pytest.raises(RateLimited) as caught:
        await client.generate(ask())
    await client.aclose()

    assert caught.value.retry_after == 53.0
    assert len(fake.generations) == 1
    assert sleeps.delays == []


async def test_dropped_connection_is_retried(
    fake: FakeGptProto, client: GptProtoClient, sleeps: RecordedSleeps
) -> None:
    fake.queue(Outcome.drop(), Outcome.image())

    generation = await client.generate(ask())

    assert generation.images[0].data == fake.generations[1].produced[0]
    assert len(sleeps.delays) == 1


async def test_connections_that_keep_dropping_end_unavailable(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    fake.queue(*[Outcome.drop()] * 4)

    with pytest.raises(Unavailable) as caught:
        await client.generate(ask())

    # Each drop came after the whole request was sent: it may have been billed, so only one
    # such attempt is retried (tests/upstream/test_billing.py has the rest).
    assert len(fake.generations) == 2
    assert getattr(caught.value, "possibly_billed", 0) == 2


async def test_unreachable_upstream_is_unavailable(sleeps: RecordedSleeps, wire: Wire) -> None:
    async with FakeGptProto() as gone:
        url = gone.url
    client = GptProtoClient(base_url=url, api_key=KEY, max_attempts=2, sleep=sleeps, transport=wire)

    with pytest.raises(Unavailable):
        await client.generate(ask())
    await client.aclose()

    assert len(sleeps.delays) == 1


async def test_timeout(fake: FakeGptProto, sleeps: RecordedSleeps, wire: Wire) -> None:
    client = GptProtoClient(
        base_url=fake.url, api_key=KEY, timeout=0.2, sleep=sleeps, transport=wire
    )
    fake.queue(Outcome.slow(3.0))

    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await client.generate(ask())
    await client.aclose()

    assert time.monotonic() - started < 2.0
    assert len(fake.generations) == 1  # a second full attempt does not fit the default budget


async def test_a_timed_out_attempt_is_retried_within_the_budget(
    fake: FakeGptProto, sleeps: RecordedSleeps, wire: Wire
) -> None:
    client = GptProtoClient(
        base_url=fake.url, api_key=KEY, timeout=0.2, max_total=5.0, sleep=sleeps, transport=wire
    )
    fake.queue(Outcome.slow(3.0), Outcome.image())

    generation = await client.generate(ask())
    await client.aclose()

    assert generation.images[0].data == fake.generations[1].produced[0]


@pytest.mark.parametrize(
    ("header", "expected"),
    [("30", 30.0), ("0", 0.0), ("1.5", 1.5), ("-4", None), ("soon", None), ("", None)],
)
def test_parse_retry_after_seconds(header: str, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2025, 11, 3, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Mon, 03 Nov 2025 12:00:45 GMT", now=now) == 45.0
    assert parse_retry_after("Mon, 03 Nov 2025 11:00:00 GMT", now=now) == 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("53s", 53.0), ("1.5s", 1.5), ({"seconds": 2, "nanos": 500_000_000}, 2.5), ("53", None)],
)
def test_parse_duration(value: object, expected: float | None) -> None:
    assert parse_duration(value) == expected
