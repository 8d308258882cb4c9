"""Every 200 answer gptproto documents becomes the right Generation or typed refusal."""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Mapping

import pytest
from PIL import Image as PILImage

from bot.errors import (
    InsufficientBalance,
    NoImage,
    OutputBlocked,
    PromptBlocked,
    TextOnly,
    UnreadableResponse,
)
from bot.upstream import RATIO_SIZES, Content, GenerationRequest, GptProtoClient, Part
from tests.fakes.gptproto import FakeGptProto, Outcome

KEY = "sk-outcomes-5b1e0c9d"
MODEL = "gemini-2.5-flash-image"
PROMPT = "a toy fox astronaut in a child's bedroom"


def ask(text: str = PROMPT, *, model: str = MODEL, ratio: str | None = None) -> GenerationRequest:
    return GenerationRequest(
        model=model, contents=(Content("user", (Part(text=text),)),), ratio=ratio
    )


async def test_image_is_the_bytes_the_fake_made(fake: FakeGptProto, client: GptProtoClient) -> None:
    generation = await client.generate(ask())

    [image] = generation.images
    [request] = fake.generations
    assert image.data == request.produced[0]
    assert image.mime_type == "image/png"
    assert fake.image_serial(image.data) == request.serial
    assert generation.text == ""
    assert generation.finish_reason == "STOP"
    assert generation.model_version == MODEL


async def test_image_size_follows_the_requested_ratio(client: GptProtoClient) -> None:
    generation = await client.generate(ask(ratio="16:9"))

    with PILImage.open(io.BytesIO(generation.images[0].data)) as picture:
        assert picture.size == RATIO_SIZES["16:9"]


async def test_image_with_text_keeps_the_text(fake: FakeGptProto, client: GptProtoClient) -> None:
    fake.queue(Outcome.image("Here is your fox, now in orbit."))

    generation = await client.generate(ask())

    assert generation.text == "Here is your fox, now in orbit."
    assert len(generation.images) == 1


async def test_usage_comes_from_usage_metadata(client: GptProtoClient) -> None:
    generation = await client.generate(ask())

    prompt_tokens = max(1, math.ceil(len(PROMPT) / 4))
    assert generation.usage.input_tokens == prompt_tokens
    assert generation.usage.output_tokens == 1290
    assert generation.usage.total_tokens == prompt_tokens + 1290
    assert generation.usage.images == 1


async def test_jpeg_output_is_typed_from_its_bytes(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    fake.queue(Outcome.image(mime="image/jpeg"))

    [image] = (await client.generate(ask())).images

    assert image.mime_type == "image/jpeg"
    assert image.extension == "jpg"
    assert image.data.startswith(b"\xff\xd8\xff")
    assert fake.image_serial(image.data) == fake.generations[0].serial


async def test_several_images_are_all_kept(fake: FakeGptProto, client: GptProtoClient) -> None:
    fake.queue(Outcome.image(count=2))

    generation = await client.generate(ask())

    assert [image.data for image in generation.images] == fake.produced
    assert generation.usage.images == 2


async def test_thought_parts_are_hidden_but_kept_for_replay(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    fake.queue(Outcome.image("The final fox.", thinking=True))

    generation = await client.generate(ask())

    assert [image.data for image in generation.images] == fake.produced
    assert generation.text == "The final fox."
    parts = json.loads(generation.parts_json)
    thoughts = [part for part in parts if part.get("thought")]
    assert len(thoughts) == 2  # the drafted words and the draft image
    signed = [part["thoughtSignature"] for part in parts if "thoughtSignature" in part]
    assert set(signed) == fake.signatures


async def test_text_only_answer(fake: FakeGptProto, client: GptProtoClient) -> None:
    fake.queue(Outcome.text_only("Which colour should the helmet be?"))

    with pytest.raises(TextOnly) as caught:
        await client.generate(ask())

    assert caught.value.text == "Which colour should the helmet be?"
    assert caught.value.exit_code == 4


@pytest.mark.parametrize(
    "reason", ["SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "IMAGE_SAFETY", "OTHER"]
)
async def test_prompt_blocked(fake: FakeGptProto, client: GptProtoClient, reason: str) -> None:
    fake.queue(Outcome.prompt_blocked(reason))

    with pytest.raises(PromptBlocked) as caught:
        await client.generate(ask())

    assert caught.value.reason == reason
    assert reason in caught.value.user_message


async def test_prompt_blocked_with_null_candidates(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    fake.queue(Outcome.prompt_blocked("PROHIBITED_CONTENT", candidates_null=True))

    with pytest.raises(PromptBlocked) as caught:
        await client.generate(ask())

    assert caught.value.reason == "PROHIBITED_CONTENT"


@pytest.mark.parametrize(
    "reason",
    [
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "PROHIBITED_CONTENT",
        "SAFETY",
        "IMAGE_RECITATION",
        "RECITATION",
    ],
)
async def test_output_blocked(fake: FakeGptProto, client: GptProtoClient, reason: str) -> None:
    fake.queue(Outcome.output_blocked(reason))

    with pytest.raises(OutputBlocked) as caught:
        await client.generate(ask())

    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "reason", ["NO_IMAGE", "MAX_TOKENS", "OTHER", "IMAGE_OTHER", "BLOCKLIST", "SPII"]
)
async def test_finish_without_image(
    fake: FakeGptProto, client: GptProtoClient, reason: str
) -> None:
    fake.queue(Outcome.finish(reason, text="I could not draw that."))

    with pytest.raises(NoImage) as caught:
        await client.generate(ask())

    assert caught.value.reason == reason
    assert caught.value.text == "I could not draw that."


@pytest.mark.parametrize(
    "outcome",
    [Outcome.html(), Outcome.empty(), Outcome.bad_json()],
    ids=["html", "empty", "bad-json"],
)
async def test_unreadable_bodies_are_not_retried(
    fake: FakeGptProto, client: GptProtoClient, outcome: Outcome
) -> None:
    fake.queue(outcome)

    with pytest.raises(UnreadableResponse):
        await client.generate(ask())

    assert len(fake.generations) == 1


def gemini_body(part: Mapping[str, object]) -> bytes:
    candidate = {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}
    return json.dumps({"candidates": [candidate]}).encode()


@pytest.mark.parametrize(
    "data",
    ["not base64 at all!", "aGVsbG8gd29ybGQ="],  # the second decodes to b"hello world"
    ids=["bad-base64", "not-an-image"],
)
async def test_bad_image_data_is_unreadable(
    fake: FakeGptProto, client: GptProtoClient, data: str
) -> None:
    fake.queue(
        Outcome.raw(200, gemini_body({"inlineData": {"mimeType": "image/png", "data": data}}))
    )

    with pytest.raises(UnreadableResponse):
        await client.generate(ask())


async def test_snake_case_parts_and_declared_type_overruled_by_bytes(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    fake.queue(Outcome.image(mime="image/jpeg"))
    jpeg = (await client.generate(ask())).images[0]
    part = {"inline_data": {"mime_type": "image/png", "data": _b64(jpeg.data)}}
    fake.queue(Outcome.raw(200, gemini_body(part)))

    [image] = (await client.generate(ask())).images

    assert image.data == jpeg.data
    assert image.mime_type == "image/jpeg"


async def test_error_body_inside_a_200_is_still_an_error(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    body = json.dumps({"error": {"message": "Insufficient balance", "type": "403"}}).encode()
    fake.queue(Outcome.raw(200, body))

    with pytest.raises(InsufficientBalance):
        await client.generate(ask())

    assert len(fake.generations) == 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
