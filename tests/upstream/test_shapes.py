"""One extractor reads every answer shape of the chat and images endpoints."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import AsyncIterator

import pytest

from bot.errors import TextOnly, UnreadableResponse
from bot.upstream import Api, Content, GenerationRequest, GptProtoClient, Part
from bot.upstream.pools import Wire
from tests.fakes.gptproto import FakeGptProto, Outcome
from tests.fakes.gptproto_images import make_image

KEY = "sk-shapes-44d0e1aa"
MODEL = "gemini-2.5-flash-image"
PROMPT = "a lighthouse at dusk"


def ask() -> GenerationRequest:
    return GenerationRequest(MODEL, (Content("user", (Part(text=PROMPT),)),))


@pytest.fixture
async def chat(fake: FakeGptProto, wire: Wire) -> AsyncIterator[GptProtoClient]:
    client = GptProtoClient(base_url=fake.url, api_key=KEY, api=Api.OPENAI_CHAT, transport=wire)
    yield client
    await client.aclose()


@pytest.fixture
async def images(fake: FakeGptProto, wire: Wire) -> AsyncIterator[GptProtoClient]:
    client = GptProtoClient(base_url=fake.url, api_key=KEY, api=Api.OPENAI_IMAGES, transport=wire)
    yield client
    await client.aclose()


@pytest.mark.parametrize("shape", ["markdown", "images", "gemini"])
async def test_chat_shapes(fake: FakeGptProto, chat: GptProtoClient, shape: str) -> None:
    fake.queue(Outcome.image("Here you go", shape=shape))  # type: ignore[arg-type]

    generation = await chat.generate(ask())

    assert [image.data for image in generation.images] == fake.produced
    assert generation.text == "Here you go"  # the markdown image is not left in the text
    assert generation.usage.images == 1
    assert generation.usage.output_tokens == 1290
    assert generation.usage.total_tokens == generation.usage.input_tokens + 1290


async def test_chat_markdown_synthesises_replayable_parts(
    fake: FakeGptProto, chat: GptProtoClient
) -> None:
    fake.queue(Outcome.image("Here you go", shape="markdown", mime="image/jpeg"))

    generation = await chat.generate(ask())

    text_part, image_part = json.loads(generation.parts_json)
    assert text_part == {"text": "Here you go"}
    assert image_part["inlineData"]["mimeType"] == "image/jpeg"
    assert generation.images[0].mime_type == "image/jpeg"


async def test_chat_text_only(fake: FakeGptProto, chat: GptProtoClient) -> None:
    fake.queue(Outcome.text_only("What style should it be?"))

    with pytest.raises(TextOnly) as caught:
        await chat.generate(ask())

    assert caught.value.text == "What style should it be?"


async def test_chat_markdown_with_broken_data_url_is_unreadable(
    fake: FakeGptProto, chat: GptProtoClient
) -> None:
    message = {"role": "assistant", "content": "![image](data:image/png;base64,%%%notbase64)"}
    body = {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    fake.queue(Outcome.raw(200, json.dumps(body).encode()))

    with pytest.raises(UnreadableResponse):
        await chat.generate(ask())


async def test_images_b64_json(fake: FakeGptProto, images: GptProtoClient) -> None:
    generation = await images.generate(ask())

    assert [image.data for image in generation.images] == fake.produced
    assert generation.usage.input_tokens == math.ceil(len(PROMPT) / 4)
    assert generation.usage.output_tokens == 1290


async def test_images_url_is_fetched_from_the_upstream_with_the_key(
    fake: FakeGptProto, images: GptProtoClient
) -> None:
    fake.queue(Outcome.image(shape="url"))

    generation = await images.generate(ask())

    assert [image.data for image in generation.images] == fake.produced
    download = fake.requests[-1]
    assert download.method == "GET"
    assert download.path.startswith("/files/")
    assert download.header("Authorization") == f"Bearer {KEY}"
    assert json.loads(generation.parts_json)[0]["inlineData"]["mimeType"] == "image/png"


async def test_image_urls_elsewhere_are_fetched_without_the_key(
    fake: FakeGptProto, images: GptProtoClient
) -> None:
    async with FakeGptProto() as cdn:
        picture = make_image(31, (512, 512))
        url = cdn.host_file("result.png", picture, "image/png")
        fake.queue(Outcome.raw(200, json.dumps({"data": [{"url": url}]}).encode()))

        generation = await images.generate(ask())

        [download] = cdn.requests
    assert generation.images[0].data == picture
    assert download.header("Authorization") is None


async def test_image_url_that_is_not_an_image_is_unreadable(
    fake: FakeGptProto, images: GptProtoClient
) -> None:
    url = fake.host_file("page.png", b"<html>login</html>", "text/html")
    fake.queue(Outcome.raw(200, json.dumps({"data": [{"url": url}]}).encode()))

    with pytest.raises(UnreadableResponse):
        await images.generate(ask())

    assert len(fake.generations) == 1


async def test_images_endpoint_passes_gemini_refusals_through(
    fake: FakeGptProto, images: GptProtoClient
) -> None:
    fake.queue(Outcome.text_only("I can only describe it."))

    with pytest.raises(TextOnly):
        await images.generate(ask())


async def test_an_image_hidden_in_a_gemini_text_part_is_an_image_not_text(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    picture = make_image(7, (64, 48))
    encoded = base64.b64encode(picture).decode()
    parts = [{"text": f"Here it is: ![result](data:image/png;base64,{encoded}) enjoy"}]
    body = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}]}
    fake.queue(Outcome.raw(200, json.dumps(body).encode()))

    generation = await client.generate(ask())

    assert [image.data for image in generation.images] == [picture]
    assert generation.text == "Here it is:  enjoy"
    assert encoded not in generation.parts_json  # stored by hash, not as a second copy
