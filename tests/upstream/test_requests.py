"""What the client sends: request shapes, auth, pre-flight refusals, replayed thought signatures."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.errors import AuthError, InvalidRequest, TooManyImages, UnknownModel, UnsupportedOption
from bot.models import Image
from bot.upstream import (
    Api,
    Content,
    Generation,
    GenerationRequest,
    GptProtoClient,
    Part,
    restore_parts,
)
from bot.upstream.pools import Wire
from tests.fakes.gptproto import FakeGptProto, Outcome, RecordedSleeps
from tests.fakes.gptproto_images import make_image

KEY = "sk-requests-6e2b90f1"
PRO = "gemini-3-pro-image-preview"
PHOTO = Image(make_image(900, (64 * 4, 64)), "image/png")


def user(*parts: Part) -> Content:
    return Content("user", parts)


@pytest.fixture
async def fake() -> AsyncIterator[FakeGptProto]:
    async with FakeGptProto(api_key=KEY) as server:
        yield server


Generate = Callable[..., Awaitable[Generation]]


@pytest.fixture
def generate(fake: FakeGptProto, wire: Wire) -> Generate:
    """One generation by a fresh client on the fake, built with these options."""

    async def run(request: GenerationRequest, **options: Any) -> Generation:
        client = GptProtoClient(
            base_url=fake.url, api_key=KEY, sleep=RecordedSleeps(), transport=wire, **options
        )
        try:
            return await client.generate(request)
        finally:
            await client.aclose()

    return run


async def test_gemini_request_shape(fake: FakeGptProto, generate: Generate) -> None:
    request = GenerationRequest(
        model=PRO,
        contents=(user(Part(text="put the fox on the moon"), Part(image=PHOTO)),),
        ratio="21:9",
        image_size="2K",
    )

    await generate(request)

    [sent] = fake.generations
    assert sent.method == "POST"
    assert sent.path == f"/v1beta/models/{PRO}:generateContent"
    assert sent.header("Content-Type") == "application/json"
    assert sent.json["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "put the fox on the moon"},
                {"inlineData": {"mimeType": "image/png", "data": _b64(PHOTO.data)}},
            ],
        }
    ]
    assert sent.json["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": "21:9", "imageSize": "2K"},
    }
    assert sent.input_images() == [PHOTO.data]


async def test_gemini_request_without_options_has_no_image_config(
    fake: FakeGptProto, generate: Generate
) -> None:
    await generate(GenerationRequest("gemini-2.5-flash-image", (user(Part(text="a fox")),)))

    assert "imageConfig" not in fake.generations[0].json["generationConfig"]


async def test_openai_images_request_shape(fake: FakeGptProto, generate: Generate) -> None:
    request = GenerationRequest(
        model="gemini-2.5-flash-image",
        contents=(
            user(Part(text="a fox")),
            Content("model", (Part(text="Here it is"),)),
            user(Part(text="wearing a helmet")),
        ),
        ratio="16:9",
    )

    generation = await generate(request, api=Api.OPENAI_IMAGES)

    [sent] = fake.generations
    assert sent.path == "/v1/images/generations"
    assert sent.json == {
        "model": "gemini-2.5-flash-image",
        "prompt": "a fox\nwearing a helmet",
        "size": "16:9",
    }
    assert generation.images[0].data == sent.produced[0]


async def test_openai_chat_request_shape(fake: FakeGptProto, generate: Generate) -> None:
    earlier = json.dumps(
        [
            {"text": "drafting", "thought": True},
            {"text": "Here it is"},
            {"inlineData": {"mimeType": "image/png", "data": _b64(PHOTO.data)}},
        ]
    )
    request = GenerationRequest(
        model="gemini-2.5-flash-image",
        contents=(
            user(Part(text="a fox")),
            Content("model", (Part(raw_json=earlier),)),
            user(Part(text="add a helmet"), Part(image=PHOTO)),
        ),
    )

    await generate(request, api=Api.OPENAI_CHAT)

    [sent] = fake.generations
    data_url = f"data:image/png;base64,{_b64(PHOTO.data)}"
    attachment = {"contentType": "image/png", "url": data_url}
    assert sent.path == "/v1/chat/completions"
    assert sent.json == {
        "model": "gemini-2.5-flash-image",
        "messages": [
            {"role": "user", "content": "a fox"},
            {
                "role": "assistant",
                "content": "Here it is",
                "experimental_attachments": [attachment],
            },
            {"role": "user", "content": "add a helmet", "experimental_attachments": [attachment]},
        ],
    }


@pytest.mark.parametrize(("scheme", "header"), [("bearer", f"Bearer {KEY}"), ("raw", KEY)])
async def test_auth_scheme(
    fake: FakeGptProto, scheme: str, header: str, generate: Generate
) -> None:
    await generate(GenerationRequest(PRO, (user(Part(text="a fox")),)), auth_scheme=scheme)

    assert fake.generations[0].header("Authorization") == header


async def test_a_wrong_key_is_an_auth_error(fake: FakeGptProto, wire: Wire) -> None:
    client = GptProtoClient(base_url=fake.url, api_key="sk-wrong-0000000", transport=wire)

    with pytest.raises(AuthError):
        await client.generate(GenerationRequest(PRO, (user(Part(text="a fox")),)))
    await client.aclose()

    assert len(fake.generations) == 1


HEIC = Image(b"\x00\x00\x00\x18ftypheic", "image/heic")


def refusable(
    *parts: Part, model: str = "gemini-2.5-flash-image", **options: Any
) -> GenerationRequest:
    return GenerationRequest(model, (user(*parts),), **options)


TEXT = Part(text="a fox")
REFUSED = [
    (refusable(*[Part(image=PHOTO)] * 4), TooManyImages),
    (refusable(TEXT, ratio="7:3"), UnsupportedOption),
    (refusable(TEXT, image_size="2K"), UnsupportedOption),
    (refusable(Part(image=HEIC)), UnsupportedOption),
    (refusable(TEXT, model="gemini-2.5-flash-image-preview"), UnknownModel),
]


@pytest.mark.parametrize(
    ("request_", "expected"), REFUSED, ids=["images", "ratio", "size", "heic", "retired"]
)
async def test_capability_checks_refuse_before_sending(
    fake: FakeGptProto, request_: GenerationRequest, expected: type[Exception], generate: Generate
) -> None:
    with pytest.raises(expected):
        await generate(request_)

    assert fake.requests == []


async def test_openai_images_refuses_input_images(fake: FakeGptProto, generate: Generate) -> None:
    request = GenerationRequest("gemini-2.5-flash-image", (user(Part(image=PHOTO)),))

    with pytest.raises(UnsupportedOption):
        await generate(request, api=Api.OPENAI_IMAGES)

    assert fake.requests == []


async def test_thought_signatures_go_back_byte_for_byte(
    fake: FakeGptProto, generate: Generate
) -> None:
    first_turn = (user(Part(text="a toy fox in a bedroom")),)
    fake.queue(Outcome.image("Here is the fox."))
    first = await generate(GenerationRequest(PRO, first_turn))
    answer = restore_parts(first.parts_json, {image.sha256: image for image in first.images})
    history = (
        *first_turn,
        Content("model", answer),
        user(Part(text="add a blue planet on its helmet")),
    )

    second = await generate(GenerationRequest(PRO, history))

    sent = fake.generations[1]
    replayed = sent.json["contents"][1]["parts"]
    issued = fake.signatures
    assert replayed == [json.loads(part.raw_json or "") for part in answer]
    stored = json.loads(first.parts_json)
    assert [part.get("thoughtSignature") for part in replayed] == [
        part.get("thoughtSignature") for part in stored
    ]
    assert all("sha256" not in json.dumps(part) for part in replayed)
    assert {part["thoughtSignature"] for part in replayed if "thoughtSignature" in part} <= issued
    assert [fake.image_serial(image) for image in sent.input_images()[-1:]] == [
        fake.generations[0].serial
    ]
    assert second.images[0].data == sent.produced[0]
    signatures_in_body = [s for s in issued if s.encode() in sent.body]
    assert len(signatures_in_body) == 2  # the text's and the image's, exactly as issued


async def test_history_without_signatures_is_refused_by_gemini_3(
    fake: FakeGptProto, generate: Generate
) -> None:
    first = await generate(GenerationRequest(PRO, (user(Part(text="a fox")),)))
    history = (
        user(Part(text="a fox")),
        Content("model", (Part(image=first.images[0]),)),
        user(Part(text="make it blue")),
    )

    with pytest.raises(InvalidRequest) as caught:
        await generate(GenerationRequest(PRO, history))

    assert "thought_signature" in caught.value.user_message


async def test_a_single_raw_part_is_replayed_too(fake: FakeGptProto, generate: Generate) -> None:
    first = await generate(GenerationRequest(PRO, (user(Part(text="a fox")),)))
    restored = restore_parts(first.parts_json, {image.sha256: image for image in first.images})
    image_part = next(
        json.loads(part.raw_json or "")
        for part in restored
        if '"inlineData"' in (part.raw_json or "") and '"thought"' not in (part.raw_json or "")
    )
    history = (user(Part(text="a fox")), Content("model", (Part(raw_json=json.dumps(image_part)),)))

    await generate(GenerationRequest(PRO, (*history, user(Part(text="bluer")))))

    assert fake.generations[1].json["contents"][1]["parts"] == [image_part]
    assert image_part["inlineData"]["data"]  # the bytes went back, not the stored hash


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
