"""Every non-200 answer gptproto documents becomes the right typed error; none leaks the key."""

from __future__ import annotations

import logging

import pytest

from bot.errors import (
    AuthError,
    BotError,
    ContentPolicy,
    InsufficientBalance,
    InvalidRequest,
    RateLimited,
    Unavailable,
    UnknownModel,
    UnreadableResponse,
    UpstreamTimeout,
)
from bot.upstream import Content, GenerationRequest, GptProtoClient, Part
from bot.upstream.pools import Wire
from tests.fakes.gptproto import FakeGptProto, Outcome, RecordedSleeps

KEY = "sk-errors-93c1f27a4d"
MODEL = "gemini-2.5-flash-image"


def ask(model: str = MODEL) -> GenerationRequest:
    return GenerationRequest(model=model, contents=(Content("user", (Part(text="a red fox"),)),))


FINAL_ERRORS = [
    (Outcome.invalid_argument("Unable to process input image."), InvalidRequest),
    (Outcome.unsafe_content(), ContentPolicy),
    (Outcome.invalid_signature(), AuthError),
    (Outcome.invalid_token(), AuthError),
    (Outcome.permission_denied(), AuthError),
    (Outcome.insufficient_balance(), InsufficientBalance),
    (Outcome.cloudflare_403(), UnreadableResponse),
    (Outcome.model_not_found("gemini-9-imaginary"), UnknownModel),
]
FINAL_IDS = [
    "400",
    "400-unsafe",
    "401",
    "403-token",
    "403-denied",
    "403-balance",
    "403-html",
    "404",
]


@pytest.mark.parametrize(("outcome", "expected"), FINAL_ERRORS, ids=FINAL_IDS)
async def test_final_errors_are_typed_and_not_retried(
    fake: FakeGptProto, client: GptProtoClient, outcome: Outcome, expected: type[BotError]
) -> None:
    fake.queue(outcome, Outcome.image())

    with pytest.raises(expected):
        await client.generate(ask())

    assert len(fake.generations) == 1
    assert fake.pending == 1  # the image queued behind it was never asked for


async def test_invalid_request_carries_upstream_message(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    fake.queue(Outcome.invalid_argument("Image part is missing a thought_signature."))

    with pytest.raises(InvalidRequest) as caught:
        await client.generate(ask())

    assert "Image part is missing a thought_signature." in caught.value.user_message
    assert caught.value.exit_code == 2


async def test_unknown_model_names_it(fake: FakeGptProto, client: GptProtoClient) -> None:
    fake.queue(Outcome.model_not_found("gemini-9-imaginary"))

    with pytest.raises(UnknownModel) as caught:
        await client.generate(ask("gemini-9-imaginary"))

    assert caught.value.model == "gemini-9-imaginary"
    assert "gemini-9-imaginary" in caught.value.user_message
    assert caught.value.exit_code == 3


async def test_html_403_explains_a_gateway_refused(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    fake.queue(Outcome.cloudflare_403())

    with pytest.raises(UnreadableResponse) as caught:
        await client.generate(ask())

    assert "403" in caught.value.user_message
    assert "gateway" in caught.value.user_message


async def test_rate_limited_after_retries(fake: FakeGptProto, wire: Wire) -> None:
    sleeps = RecordedSleeps()
    client = GptProtoClient(
        base_url=fake.url, api_key=KEY, max_attempts=3, sleep=sleeps, transport=wire
    )
    fake.queue(*[Outcome.rate_limited("4s")] * 3)

    with pytest.raises(RateLimited) as caught:
        await client.generate(ask())
    await client.aclose()

    assert caught.value.retry_after == 4.0
    assert len(fake.generations) == 3
    assert sleeps.delays == [4.0, 4.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_become_unavailable_after_retries(
    fake: FakeGptProto, status: int, wire: Wire
) -> None:
    client = GptProtoClient(
        base_url=fake.url, api_key=KEY, max_attempts=3, sleep=RecordedSleeps(), transport=wire
    )
    fake.queue(*[Outcome.server_error(status)] * 3)

    with pytest.raises(Unavailable) as caught:
        await client.generate(ask())
    await client.aclose()

    assert str(status) in caught.value.user_message
    assert len(fake.generations) == 3
    assert caught.value.exit_code == 5


LEAKY = [
    Outcome.gptproto_error(401, f"Invalid token: {KEY}"),
    Outcome.invalid_argument(f"API key {KEY} is not valid for this model"),
    Outcome.gptproto_error(403, f"Insufficient balance for {KEY}"),
    Outcome.google_error(429, "RESOURCE_EXHAUSTED", f"quota of {KEY} exhausted"),
    Outcome.google_error(503, "UNAVAILABLE", f"overloaded for key {KEY}"),
    Outcome.model_not_found(),
    Outcome.cloudflare_403(),
    Outcome.html(),
    Outcome.empty(502),
    Outcome.drop(),
    Outcome.slow(2.0),
]


LEAKY_IDS = [
    "401-echo", "400-echo", "403-echo", "429-echo", "503-echo", "404", "403-html", "200-html",
    "502-empty", "drop", "slow",
]  # fmt: skip


@pytest.mark.parametrize("outcome", LEAKY, ids=LEAKY_IDS)
async def test_the_api_key_never_appears_in_errors_or_logs(
    fake: FakeGptProto, outcome: Outcome, caplog: pytest.LogCaptureFixture, wire: Wire
) -> None:
    caplog.set_level(logging.DEBUG)
    client = GptProtoClient(
        base_url=fake.url,
        api_key=KEY,
        max_attempts=1,
        timeout=0.3,
        sleep=RecordedSleeps(),
        transport=wire,
    )
    fake.queue(outcome)

    with pytest.raises(BotError) as caught:
        await client.generate(ask())
    await client.aclose()

    error = caught.value
    chain = [error, error.__cause__, error.__context__]
    shown = " ".join(f"{item} {item!r}" for item in chain if item is not None)
    assert KEY not in shown
    assert KEY not in error.user_message
    assert KEY not in caplog.text
    assert KEY not in repr(client)


async def test_timeout_error_type(fake: FakeGptProto, wire: Wire) -> None:
    client = GptProtoClient(
        base_url=fake.url, api_key=KEY, max_attempts=1, timeout=0.2, transport=wire
    )
    fake.queue(Outcome.slow(2.0))

    with pytest.raises(UpstreamTimeout):
        await client.generate(ask())
    await client.aclose()

    assert len(fake.generations) == 1
