"""Today's model options end to end on the fake: sizes, several candidates, `n`, grounding,
unflagged drafts, and models that are gone - each model with its own limits."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest
from PIL import Image as PILImage

from bot.errors import InvalidRequest, UnknownModel
from bot.upstream import (
    BUILTIN,
    Api,
    Content,
    GenerationRequest,
    GptProtoClient,
    ModelTable,
    Part,
)
from bot.upstream.pools import Wire
from tests.fakes.gptproto import FakeGptProto, Outcome, RecordedSleeps
from tests.upstream.conftest import TEST_API_KEY

FLASH, PRO, LITE, OLD = (
    "gemini-3.1-flash-image", "gemini-3-pro-image", "gemini-3.1-flash-lite-image",
    "gemini-2.5-flash-image",
)  # fmt: skip


def ask(model: str, **options: object) -> GenerationRequest:
    request = GenerationRequest(model=model, contents=(Content("user", (Part(text="a fox"),)),))
    return replace(request, **options)  # type: ignore[arg-type]


def pixels(data: bytes) -> tuple[int, int]:
    with PILImage.open(io.BytesIO(data)) as image:
        return image.size


def on(fake: FakeGptProto, wire: Wire, **settings: object) -> GptProtoClient:
    return GptProtoClient(
        base_url=fake.url, api_key=TEST_API_KEY, sleep=RecordedSleeps(), transport=wire,
        **settings,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("model", "size", "expected"),
    [(FLASH, "512", (512, 512)), (FLASH, "2K", (2048, 2048)), (PRO, "4K", (4096, 4096))],
)
async def test_the_size_asked_is_sent_and_made(
    fake: FakeGptProto, client: GptProtoClient, model: str, size: str, expected: tuple[int, int]
) -> None:
    [image] = (await client.generate(ask(model, image_size=size))).images

    config = fake.generations[0].json["generationConfig"]
    assert config["imageConfig"]["imageSize"] == size
    assert pixels(image.data) == expected


async def test_a_single_size_model_gets_no_image_size(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    await client.generate(ask(OLD, image_size="1K"))

    assert "imageConfig" not in fake.generations[0].json["generationConfig"]


async def test_several_candidates_one_final_image_each_with_its_own_parts(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    generation = await client.generate(ask(OLD, count=3))

    assert fake.generations[0].json["generationConfig"]["candidateCount"] == 3
    assert [image.data for image in generation.images] == fake.produced
    assert len({image.sha256 for image in generation.images}) == 3
    assert generation.usage.images == 3
    for index, image in enumerate(generation.images):
        assert generation.parts_for(index).count(image.sha256) == 1
        others = {i.sha256 for i in generation.images} - {image.sha256}
        assert not any(sha in generation.parts_for(index) for sha in others)
    assert generation.parts_json == generation.candidate_parts[0]


async def test_count_one_sends_no_candidate_count(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    await client.generate(ask(FLASH))

    assert "candidateCount" not in fake.generations[0].json["generationConfig"]


async def test_candidates_beyond_the_model_are_refused_by_the_fake(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    with pytest.raises(InvalidRequest, match="Multiple candidates"):
        await client.generate(ask(FLASH, count=2))  # the 3-family makes one per call


@pytest.mark.parametrize("api", [Api.OPENAI_IMAGES, Api.OPENAI_CHAT])
async def test_n_on_the_openai_endpoints_brings_several_images(
    fake: FakeGptProto, wire: Wire, api: Api
) -> None:
    client = on(fake, wire, api=api)
    generation = await client.generate(ask(OLD, count=2))
    await client.aclose()

    assert fake.generations[0].json["n"] == 2
    assert [image.data for image in generation.images] == fake.produced
    assert len(generation.candidate_parts) == 2


async def test_drafts_without_the_thought_flag_are_history_not_results(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    fake.queue(Outcome.image("Here it is.", drafts=2))

    generation = await client.generate(ask(PRO))

    [image] = generation.images
    assert image.data == fake.produced[-1]  # the final image, the candidate's last
    parts = json.loads(generation.parts_json)
    drafts = [p for p in parts if "data" in p.get("inlineData", {}) and not p.get("thought")]
    assert len(drafts) == 2 and all(p["thoughtSignature"] for p in drafts)
    signed = {p["thoughtSignature"] for p in parts if "thoughtSignature" in p}
    assert signed == fake.signatures  # every signature kept, verbatim


async def test_drafts_replayed_with_their_signatures_satisfy_the_next_turn(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    from bot.upstream import restore_parts

    fake.queue(Outcome.image(drafts=1))
    first = await client.generate(ask(FLASH))
    history = restore_parts(first.parts_json, {image.sha256: image for image in first.images})
    follow_up = replace(
        ask(FLASH),
        contents=(
            Content("user", (Part(text="a fox"),)),
            Content("model", history),
            Content("user", (Part(text="now at night"),)),
        ),
    )

    await client.generate(follow_up)

    replayed = fake.generations[1].json["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in replayed] == [
        p.get("thoughtSignature") for p in json.loads(first.parts_json)
    ]


async def test_grounding_is_asked_for_and_its_sources_read(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    generation = await client.generate(ask(FLASH, search=True))

    assert fake.generations[0].json["tools"] == [{"google_search": {}}]
    serial = fake.generations[0].serial
    assert [(s.uri, s.title) for s in generation.sources] == [
        (f"https://example.org/{serial}/skyline", f"Skyline {serial} | Example"),
        (f"https://news.example.com/{serial}", "news.example.com"),
    ]


async def test_grounding_on_a_model_without_it_is_refused_by_the_fake(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    # The client's own check refuses it first; a table that claims otherwise meets the fake.
    lying = BUILTIN.with_rows({"models": {LITE: {"grounding": True}}})
    client = on(fake, "httpx", models=lying)
    with pytest.raises(InvalidRequest, match="Search as tool"):
        await client.generate(ask(LITE, search=True))
    await client.aclose()


@pytest.mark.parametrize(
    ("model", "options", "said"),
    [
        (OLD, {"image_size": "2K"}, "Image size"),
        (PRO, {"image_size": "512"}, "Image size"),
        (PRO, {"ratio": "1:8"}, "aspect ratio"),
        (LITE, {"image_size": "4K"}, "Image size"),
    ],
)
async def test_the_fake_refuses_what_each_model_lacks(
    fake: FakeGptProto, model: str, options: dict[str, str], said: str
) -> None:
    # Everything allowed client-side, so the fake's own per-model rules answer.
    row = {"sizes": ["512", "1K", "2K", "4K"], "ratios": ["1:1", "1:8"]}
    client = on(fake, "httpx", models=BUILTIN.with_rows({"models": {model: row}}))
    with pytest.raises(InvalidRequest, match=said):
        await client.generate(ask(model, **options))
    await client.aclose()


async def test_a_model_marked_gone_names_the_tables_successor(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    fake.gone.add("gemini-3-pro-image-preview")

    with pytest.raises(UnknownModel) as caught:
        await client.generate(ask("gemini-3-pro-image-preview"))

    assert caught.value.replacement == PRO
    assert "2026-06-25" in caught.value.user_message


async def test_a_retired_id_that_reaches_the_fake_is_not_found(fake: FakeGptProto) -> None:
    forgetful = ModelTable(retired={})  # a table that no longer lists the retired ids
    client = on(fake, "httpx", models=forgetful)
    with pytest.raises(UnknownModel, match="does not know"):
        await client.generate(ask("gemini-2.5-flash-image-preview"))
    await client.aclose()
    assert len(fake.generations) == 1


@pytest.mark.parametrize(
    "message",
    [
        "The model gemini-3-pro-image-preview has been retired.",
        "model gemini-3-pro-image-preview is deprecated",
        "This model is no longer available.",
    ],
)
async def test_retirement_words_on_another_status_map_to_unknown_model(
    fake: FakeGptProto, client: GptProtoClient, message: str
) -> None:
    fake.queue(Outcome.gptproto_error(400, message))

    with pytest.raises(UnknownModel) as caught:
        await client.generate(ask("gemini-3-pro-image-preview"))

    assert caught.value.replacement == PRO


async def test_an_operator_table_names_its_own_successor(fake: FakeGptProto) -> None:
    table = BUILTIN.with_rows({"models": {"house-image": {"successor": FLASH}}})
    client = on(fake, "httpx", models=table)
    fake.gone.add("house-image")
    with pytest.raises(UnknownModel) as caught:
        await client.generate(ask("house-image"))
    await client.aclose()
    assert caught.value.replacement == FLASH


async def test_a_large_4k_answer_is_about_twenty_megabytes(
    fake: FakeGptProto, client: GptProtoClient
) -> None:
    fake.queue(Outcome.large_image(20))

    [image] = (await client.generate(ask(FLASH, image_size="4K"))).images

    assert 18_000_000 <= len(image.data) <= 24_000_000
    assert pixels(image.data) == (4096, 4096)
    assert fake.image_serial(image.data) == fake.generations[0].serial
