"""Today's models over the wire: the real client and store against the upstream fake.

Drafts that are not results, several images from one call, grounding sources, sizes, and a
model the service no longer has.
"""

from __future__ import annotations

import base64
import io
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image as PILImage

from bot.errors import UnknownModel
from tests.fakes.gptproto import FakeGptProto, Outcome, image_serial
from tests.support.engine import engine_on, request

FLASH = "gemini-3.1-flash-image"


async def test_drafts_are_history_and_only_the_final_image_is_a_result(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    fake.queue(Outcome.image("Here it is.", drafts=2))
    async with engine_on(fake, tmp_path) as (engine, store):
        first = await engine.imagine(replace(request("t1", "a lighthouse"), model=FLASH))
        await engine.refine(request("t1", "make it night"))
        stored = await store.get_turn(first.turn.id)
    produced = fake.generations[0].produced  # the final image; the drafts came before it
    assert [image.data for image in first.images] == produced[-1:]
    assert stored is not None and stored.outputs == (first.images[0].sha256,)
    # The next turn replays the whole answer, drafts and their signatures included.
    replayed = fake.generations[1].json["contents"][1]["parts"]
    pictures = [part for part in replayed if "inlineData" in part and not part.get("thought")]
    assert len(pictures) == 3 and all("thoughtSignature" in part for part in pictures)
    assert base64.b64decode(pictures[-1]["inlineData"]["data"]) == first.images[0].data


async def test_several_images_from_one_call_become_branches(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    async with engine_on(fake, tmp_path) as (engine, store):
        reply = await engine.imagine(
            replace(request("t1", "a fox"), model="gemini-2.5-flash-image", count=3)
        )
        kept = [await store.load_images(turn.outputs) for turn in reply.turns]
    [sent] = fake.generations
    assert sent.json["generationConfig"]["candidateCount"] == 3
    assert [image.data for image in reply.images] == sent.produced
    assert [images[0].data for images in kept] == sent.produced
    assert len({turn.id for turn in reply.turns}) == 3


async def test_a_grounded_answer_brings_its_sources(fake: FakeGptProto, tmp_path: Path) -> None:
    async with engine_on(fake, tmp_path) as (engine, _):
        reply = await engine.imagine(
            replace(request("t1", "the tallest tower today"), model=FLASH, search=True)
        )
    assert fake.generations[0].json["tools"] == [{"google_search": {}}]
    assert reply.sources and all(source.uri.startswith("https://") for source in reply.sources)


async def test_a_4k_request_comes_back_at_4k(fake: FakeGptProto, tmp_path: Path) -> None:
    async with engine_on(fake, tmp_path) as (engine, _):
        reply = await engine.imagine(replace(request("t1", "a fox"), model=FLASH, size="4K"))
    config = fake.generations[0].json["generationConfig"]["imageConfig"]
    assert config["imageSize"] == "4K"
    assert PILImage.open(io.BytesIO(reply.images[0].data)).size == (4096, 4096)
    assert reply.turn.size == "4K"
    assert image_serial(reply.images[0].data) == 1


async def test_a_model_the_service_no_longer_has_names_its_successor(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    fake.gone.add("gemini-2.5-flash-image")
    async with engine_on(fake, tmp_path) as (engine, _):
        with pytest.raises(UnknownModel) as gone:
            await engine.imagine(request("t1", "a fox"))
    assert "'gemini-2.5-flash-image' has been retired on 2026-10-02" in gone.value.user_message
    assert "use 'gemini-3.1-flash-image'" in gone.value.user_message
    assert len(fake.generations) == 1
