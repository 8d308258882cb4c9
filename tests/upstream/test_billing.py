"""Billing safety: an attempt the upstream received whole may have made (and billed) an image.

Such an attempt - the request fully sent, then the connection dropped or the answer timed
out - is retried at most once, logged, and counted in `possibly_billed` (on the Generation,
or on the error when the job fails). Failures before the request was out, and answers that
refused it (429, 5xx), cost nothing and keep their usual retries.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from bot.errors import BotError, InvalidRequest, NoImage, Unavailable, UpstreamTimeout
from bot.models import Image
from bot.upstream import Content, GenerationRequest, GptProtoClient, Part
from bot.upstream.pools import Wire
from tests.fakes.gptproto import FakeGptProto, Outcome, RecordedSleeps
from tests.fakes.gptproto_images import make_image
from tests.upstream.wires import RawServer, full_backlog, head, refused_port

KEY = "sk-billing-5e1f0a"


def ask(image: Image | None = None) -> GenerationRequest:
    parts = (Part(text="a fox"),) + ((Part(image=image),) if image else ())
    return GenerationRequest(model="gemini-2.5-flash-image", contents=(Content("user", parts),))


def billed(error: BaseException) -> int:
    return int(getattr(error, "possibly_billed", 0))


def build(
    url: str, wire: Wire, *, sleeps: RecordedSleeps | None = None, **settings: float
) -> GptProtoClient:
    # More attempts than a possibly billed call may ever take: the cap of one retry is ours.
    options: dict[str, float] = {"max_attempts": 6, "max_total": 30.0} | settings
    return GptProtoClient(
        base_url=url,
        api_key=KEY,
        sleep=sleeps or RecordedSleeps(),
        transport=wire,
        timeout=options.pop("timeout", 180.0),
        max_attempts=int(options.pop("max_attempts")),
        max_total=options.pop("max_total"),
    )


@pytest.fixture
async def client(fake: FakeGptProto, wire: Wire) -> AsyncIterator[GptProtoClient]:
    upstream = build(fake.url, wire)
    yield upstream
    await upstream.aclose()


async def test_a_drop_after_the_request_was_sent_is_retried_once_and_counted(
    fake: FakeGptProto, client: GptProtoClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake.queue(Outcome.drop(), Outcome.image())

    with caplog.at_level(logging.WARNING, logger="bot.upstream"):
        generation = await client.generate(ask())

    assert len(fake.generations) == 2
    assert generation.images[0].data == fake.generations[1].produced[0]
    assert generation.possibly_billed == 1
    [warning] = [r for r in caplog.records if "billed" in r.getMessage()]
    assert warning.levelno == logging.WARNING


async def test_a_second_drop_is_not_risked_whatever_the_attempts_allow(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    fake.queue(Outcome.drop(), Outcome.drop(), Outcome.image())

    with pytest.raises(Unavailable) as caught:
        await client.generate(ask())

    assert len(fake.generations) == 2
    assert fake.pending == 1
    assert billed(caught.value) == 2


async def test_a_read_timeout_is_retried_once_and_counted(fake: FakeGptProto, wire: Wire) -> None:
    client = build(fake.url, wire, timeout=0.2)
    fake.queue(Outcome.slow(5.0), Outcome.image())

    generation = await client.generate(ask())
    await client.aclose()

    assert len(fake.generations) == 2
    assert generation.possibly_billed == 1


async def test_timeouts_after_sending_end_with_the_count_on_the_error(
    fake: FakeGptProto, wire: Wire
) -> None:
    client = build(fake.url, wire, timeout=0.2)
    fake.queue(Outcome.slow(5.0), Outcome.slow(5.0), Outcome.image())

    with pytest.raises(UpstreamTimeout) as caught:
        await client.generate(ask())
    await client.aclose()

    assert len(fake.generations) == 2
    assert billed(caught.value) == 2


async def test_a_refusal_after_a_possibly_billed_attempt_carries_the_count(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    fake.queue(Outcome.drop(), Outcome.invalid_argument())

    with pytest.raises(InvalidRequest) as caught:
        await client.generate(ask())

    assert billed(caught.value) == 1


async def test_an_answer_without_image_after_a_drop_carries_the_count(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    fake.queue(Outcome.drop(), Outcome.finish("NO_IMAGE"))

    with pytest.raises(NoImage) as caught:
        await client.generate(ask())

    assert billed(caught.value) == 1


async def test_rate_limits_and_server_errors_are_not_possibly_billed(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    fake.queue(
        Outcome.rate_limited("1s"),
        Outcome.overloaded(),
        Outcome.server_error(500),
        Outcome.drop(),
        Outcome.server_error(502),
        Outcome.image(),
    )

    generation = await client.generate(ask())

    assert len(fake.generations) == 6  # only the drop counts towards the one-retry cap
    assert generation.possibly_billed == 1


async def test_refused_connections_keep_every_attempt_and_are_not_billed(wire: Wire) -> None:
    sleeps = RecordedSleeps()
    client = build(f"http://127.0.0.1:{refused_port()}", wire, sleeps=sleeps, max_attempts=3)
    with pytest.raises(Unavailable) as caught:
        await client.generate(ask())
    await client.aclose()

    assert billed(caught.value) == 0
    assert len(sleeps.delays) == 2


async def test_a_connect_that_times_out_is_not_billed(wire: Wire) -> None:
    with full_backlog() as port:
        sleeps = RecordedSleeps()
        url = f"http://127.0.0.1:{port}"
        client = build(url, wire, sleeps=sleeps, timeout=0.2, max_attempts=3)
        with pytest.raises((UpstreamTimeout, Unavailable)) as caught:
            await client.generate(ask())
        await client.aclose()

    assert billed(caught.value) == 0
    assert len(sleeps.delays) == 2


async def test_a_drop_while_the_request_is_still_being_written_is_not_billed(wire: Wire) -> None:
    # More than loopback's socket buffers hold: the server hangs up mid-body, unread.
    photo = Image(make_image(1, (256, 256), padding=24 * 1024 * 1024), "image/png")
    async with RawServer(b"", close=True, read_body=False) as server:
        client = build(f"http://127.0.0.1:{server.port}", wire, max_attempts=3)
        with pytest.raises(BotError) as caught:
            await client.generate(ask(photo))
        await client.aclose()

    assert len(server.requests) == 3
    assert billed(caught.value) == 0


async def test_a_200_cut_short_is_possibly_billed(wire: Wire) -> None:
    cut = head("200 OK", "Content-Type: application/json", "Content-Length: 4096") + b'{"cand'
    async with RawServer(cut, close=True) as server:
        client = build(f"http://127.0.0.1:{server.port}", wire)
        with pytest.raises(Unavailable) as caught:
            await client.generate(ask())
        await client.aclose()

    assert len(server.requests) == 2
    assert billed(caught.value) == 2


async def test_an_error_status_cut_short_is_not_billed(wire: Wire) -> None:
    cut = head("503 Service Unavailable", "Content-Type: application/json", "Content-Length: 900")
    async with RawServer(cut + b'{"error": {"co', close=True) as server:
        client = build(f"http://127.0.0.1:{server.port}", wire, max_attempts=3)
        with pytest.raises(Unavailable) as caught:
            await client.generate(ask())
        await client.aclose()

    assert len(server.requests) == 3
    assert billed(caught.value) == 0
