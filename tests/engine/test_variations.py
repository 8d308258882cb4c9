"""Options on the engine's ports: variations as branches, sizes, grounding, upscale, the table."""

from __future__ import annotations

import base64
import io
from dataclasses import replace

import pytest
from PIL import Image as PILImage

from bot.engine import EngineOptions
from bot.errors import (
    InvalidRequest,
    TooManyImages,
    UnknownModel,
    UnsupportedOption,
    UserRateLimited,
)
from bot.models import Attachment, Source, TurnStatus
from tests.fakes.generator import Call, Script
from tests.support.engine import fast_engine, request

FLASH = "gemini-3.1-flash-image"


def sent_back(call: Call) -> bytes:
    """The current image a refinement of a thinking model replays inside the model's answer."""
    [part] = [part for part in call.replayed if "inlineData" in part]
    return base64.b64decode(part["inlineData"]["data"])


def png_bytes(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (32, 24), colour).save(buffer, "PNG")
    return buffer.getvalue()


LITE = "gemini-3.1-flash-lite-image"
OLD = "gemini-2.5-flash-image"


async def test_four_variations_on_a_three_family_model_are_four_calls_and_four_branches() -> None:
    async with fast_engine() as (engine, store, generator):
        reply = await engine.imagine(replace(request("t1", "a fox"), model=FLASH, count=4))
        thread = await engine.thread_for(reply.key)
        stored = [await store.get_turn(turn.id) for turn, _ in reply.branches]
    assert len(generator.calls) == 4
    assert all(call.request.count == 1 for call in generator.calls)
    assert len(reply.images) == len(reply.turns) == 4
    assert len({image.sha256 for image in reply.images}) == 4
    assert [turn.parent_id for turn in reply.turns] == [None] * 4
    assert all(turn is not None and turn.status is TurnStatus.DONE for turn in stored)
    for image, saved in zip(reply.images, stored, strict=True):
        assert saved is not None and saved.outputs == (image.sha256,)
    assert thread is not None and thread.head_id == reply.turn.id == reply.turns[0].id


async def test_variations_on_a_model_that_returns_several_take_one_call() -> None:
    async with fast_engine() as (engine, _, generator):
        reply = await engine.imagine(replace(request("t1", "a fox"), model=OLD, count=3))
    assert [call.request.count for call in generator.calls] == [3]
    assert len(reply.images) == 3 and len(reply.turns) == 3
    # Each branch keeps the parts of its own candidate as history.
    for turn, image in reply.branches:
        others = {other.sha256 for other in reply.images} - {image.sha256}
        assert image.sha256 in (turn.parts_json or "")
        assert not any(sha in (turn.parts_json or "") for sha in others)


async def test_refining_one_variation_keeps_the_others() -> None:
    async with fast_engine() as (engine, store, generator):
        first = await engine.imagine(replace(request("t1", "a fox"), model=FLASH, count=3))
        chosen = first.turns[1]
        refined = await engine.refine(replace(request("t1", "make it night"), reply_to=chosen.id))
        others = [
            await store.load_images(turn.outputs) for turn in (first.turns[0], first.turns[2])
        ]
    assert refined.turn.parent_id == chosen.id
    assert sent_back(generator.calls[-1]) == first.images[1].data
    assert all(len(images) == 1 for images in others)


async def test_a_variation_that_fails_is_reported_and_the_rest_are_delivered() -> None:
    async with fast_engine() as (engine, store, generator):
        generator.queue(Script(), Script(error=InvalidRequest("no")), Script())
        reply = await engine.imagine(replace(request("t1", "a fox"), model=FLASH, count=3))
        thread = await engine.thread_for(reply.key)
        assert thread is not None
        turns = [await store.get_turn(n) for n in range(1, 4)]
    assert len(reply.images) == 2
    statuses = sorted(turn.status for turn in turns if turn is not None)
    assert statuses == [TurnStatus.DONE, TurnStatus.DONE, TurnStatus.FAILED]


async def test_every_variation_failing_raises_and_fails_every_turn() -> None:
    async with fast_engine() as (engine, store, generator):
        generator.queue(*(Script(error=InvalidRequest("no")) for _ in range(2)))
        with pytest.raises(InvalidRequest):
            await engine.imagine(replace(request("t1", "a fox"), model=FLASH, count=2))
        turns = [await store.get_turn(n) for n in (1, 2)]
    assert [turn.status for turn in turns if turn] == [TurnStatus.FAILED] * 2


async def test_variations_count_as_that_many_jobs_for_the_limits() -> None:
    async with fast_engine(per_minute=3) as (engine, _, generator):
        with pytest.raises(UnsupportedOption, match="at most 3 images a minute"):
            await engine.precheck(replace(request("t1", "a fox"), model=FLASH, count=4))
        await engine.imagine(replace(request("t1", "a fox"), model=FLASH, count=2))
        asked = replace(request("t2", "a fox"), model=FLASH, count=2)
        with pytest.raises(UserRateLimited):
            await engine.precheck(asked)
        with pytest.raises(UserRateLimited):
            await engine.imagine(asked)
        # The refused pair counted nothing: one more image still fits in the minute.
        await engine.imagine(replace(asked, count=1))
    assert len(generator.calls) == 3


@pytest.mark.parametrize("count", [0, 5])
async def test_a_count_outside_one_to_four_is_refused(count: int) -> None:
    async with fast_engine() as (engine, _, generator):
        with pytest.raises(UnsupportedOption, match="1 to 4"):
            await engine.imagine(replace(request("t1", "a fox"), count=count))
    assert generator.calls == []


async def test_sizes_go_to_models_that_make_them_and_refinements_keep_them() -> None:
    async with fast_engine() as (engine, _, generator):
        await engine.imagine(replace(request("t1", "a fox"), model=FLASH, size="4K"))
        refined = await engine.refine(request("t1", "make it night"))
        await engine.imagine(replace(request("t2", "a fox"), model=OLD, size="1K"))
    assert [call.request.image_size for call in generator.calls] == ["4K", "4K", None]
    assert refined.turn.size == "4K"


@pytest.mark.parametrize(
    ("model", "size", "said"),
    [
        (LITE, "4K", "makes only 1K"),
        (OLD, "2K", "makes only 1K"),
        ("gemini-3-pro-image", "512", "1K, 2K, 4K"),
    ],
)
async def test_a_size_the_model_lacks_is_refused_before_anything_is_sent(
    model: str, size: str, said: str
) -> None:
    async with fast_engine() as (engine, _, generator):
        with pytest.raises(UnsupportedOption, match=said):
            await engine.precheck(replace(request("t1", "a fox"), model=model, size=size))
        with pytest.raises(UnsupportedOption):
            await engine.imagine(replace(request("t1", "a fox"), model=model, size=size))
    assert generator.calls == []


async def test_search_is_sent_to_grounding_models_and_refused_by_the_others() -> None:
    async with fast_engine() as (engine, _, generator):
        reply = await engine.imagine(
            replace(request("t1", "today's skyline"), model=FLASH, search=True)
        )
        with pytest.raises(UnsupportedOption, match="cannot search"):
            await engine.imagine(replace(request("t2", "a fox"), model=LITE, search=True))
    assert [call.request.search for call in generator.calls] == [True]
    assert all(isinstance(source, Source) for source in reply.sources)


async def test_upscale_renders_the_chosen_result_at_the_largest_size() -> None:
    async with fast_engine() as (engine, _, generator):
        first = await engine.imagine(replace(request("t1", "a fox"), model=FLASH, count=2))
        upscaled = await engine.upscale(first.turns[1].id, user="UALICE")
        with pytest.raises(UnsupportedOption, match="already 4K"):
            await engine.upscale(upscaled.turn.id, user="UALICE")
    call = generator.calls[-1]
    assert call.request.image_size == "4K"
    assert sent_back(call) == first.images[1].data
    assert upscaled.turn.parent_id == first.turns[1].id
    assert upscaled.turn.size == "4K"


async def test_a_model_with_one_size_cannot_upscale() -> None:
    async with fast_engine() as (engine, _, generator):
        first = await engine.imagine(replace(request("t1", "a fox"), model=OLD))
        with pytest.raises(UnsupportedOption, match="one size"):
            await engine.upscale(first.turn.id, user="UALICE")
    assert len(generator.calls) == 1


async def test_each_model_takes_its_own_number_of_references() -> None:
    photos = tuple(Attachment(png_bytes((i, i, i)), name=f"{i}.png") for i in range(14))
    async with fast_engine() as (engine, _, generator):
        with pytest.raises(TooManyImages):
            await engine.imagine(replace(request("t1", "mix"), model=OLD, attachments=photos[:4]))
        await engine.imagine(replace(request("t2", "mix"), model=FLASH, attachments=photos))
        # An id the table does not list takes its family's limits, not 2.5's.
        await engine.imagine(
            replace(request("t3", "mix"), model="gemini-3.2-flash-image", attachments=photos)
        )
    assert [len(call.request.images) for call in generator.calls] == [14, 14]


async def test_a_retired_id_is_refused_naming_its_successor() -> None:
    async with fast_engine() as (engine, _, generator):
        with pytest.raises(UnknownModel, match=r"gemini-3\.1-flash-image"):
            await engine.imagine(
                replace(request("t1", "a fox"), model="gemini-2.5-flash-image-preview")
            )
    assert generator.calls == []


async def test_only_the_operators_models_may_be_chosen() -> None:
    options = EngineOptions(model=FLASH, allowed_models=(FLASH, LITE))
    async with fast_engine(options=options) as (engine, _, generator):
        with pytest.raises(UnsupportedOption, match="not offered here"):
            await engine.precheck(replace(request("t1", "a fox"), model="gemini-3-pro-image"))
        await engine.imagine(replace(request("t1", "a fox"), model=LITE))
    assert engine.choosable_models() == (FLASH, LITE)
    assert [call.request.model for call in generator.calls] == [LITE]
