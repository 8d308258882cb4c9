"""The engine end to end: real SQLite store, real gptproto client, the upstream fake over HTTP."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image as PILImage

from bot.engine import AccessPolicy, Engine, JobGate, UserLimits
from bot.errors import (
    AccessDenied,
    EmptyPrompt,
    NotAnImage,
    NothingToRefine,
    PromptBlocked,
    TooManyImages,
    UnsupportedOption,
    UserRateLimited,
)
from bot.models import Attachment, TurnStatus
from bot.upstream import GptProtoClient
from storage.sqlite import SqliteStore
from tests.fakes.gptproto import FakeGptProto, Outcome, image_serial
from tests.support.engine import engine_on, request


def png(colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


async def test_generate_returns_the_upstream_bytes_and_stores_the_turn(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    fake.queue(Outcome.image("A fox, as asked."))
    async with engine_on(fake, tmp_path) as (engine, store):
        reply = await engine.imagine(replace(request("t1", "a red fox"), ratio="16:9"))
        sent = fake.generations[0]
        assert sent.json["contents"] == [{"role": "user", "parts": [{"text": "a red fox"}]}]
        assert sent.json["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
        assert reply.images[0].data == sent.produced[0]
        assert PILImage.open(io.BytesIO(reply.images[0].data)).size == (1344, 768)
        assert reply.text == "A fox, as asked."
        assert (reply.turn.number, reply.turn.status) == (1, TurnStatus.DONE)
        thread = await engine.thread_for(reply.key)
        assert thread is not None and thread.head_id == reply.turn.id
        stored = await store.load_images(reply.turn.outputs)
        assert [image.data for image in stored] == [reply.images[0].data]
        # The model's parts are kept for replay with the image by hash, not a second copy.
        assert reply.turn.parts_json is not None
        assert f'"sha256":"{reply.images[0].sha256}"' in reply.turn.parts_json
        assert len(reply.turn.parts_json) < 400


async def test_edit_sends_every_attachment(fake: FakeGptProto, tmp_path: Path) -> None:
    photos = (png((10, 10, 10)), png((20, 20, 20)), png((30, 30, 30)))
    async with engine_on(fake, tmp_path) as (engine, _):
        attachments = tuple(
            Attachment(data=photo, name=f"p{i}.png") for i, photo in enumerate(photos)
        )
        await engine.imagine(replace(request("t1", "put them together"), attachments=attachments))
    assert fake.generations[0].input_images() == list(photos)


async def test_refine_sends_the_previous_output_and_keeps_the_ratio(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    async with engine_on(fake, tmp_path) as (engine, _):
        first = await engine.imagine(replace(request("t1", "a lighthouse"), ratio="21:9"))
        second = await engine.refine(request("t1", "make it night"))
    refinement = fake.generations[1]
    assert refinement.input_images() == [first.images[0].data]
    assert refinement.json["generationConfig"]["imageConfig"] == {"aspectRatio": "21:9"}
    texts = [part.get("text", "") for part in refinement.json["contents"][0]["parts"]]
    assert any("a lighthouse" in text for text in texts)
    assert any("make it night" in text for text in texts)
    assert second.turn.parent_id == first.turn.id
    assert second.turn.number == 2


async def test_turn_ten_sends_no_more_than_turn_two(fake: FakeGptProto, tmp_path: Path) -> None:
    async with engine_on(fake, tmp_path) as (engine, _):
        await engine.imagine(request("t1", "a quiet harbour"))
        for step in range(2, 11):
            await engine.refine(request("t1", f"change number {step}"))
    turn_two, turn_ten = fake.generations[1], fake.generations[9]
    assert len(turn_ten.input_images()) == len(turn_two.input_images()) == 1
    assert image_serial(turn_ten.input_images()[0]) == 9  # the image turn 9 made
    context = json.dumps(turn_ten.json)
    assert "change number 3" not in context  # older than the 6-prompt window
    assert "change number 4" in context
    assert len(turn_ten.body) < 1.5 * len(turn_two.body)


async def test_reply_to_an_earlier_turn_branches_from_its_image(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    async with engine_on(fake, tmp_path) as (engine, _):
        first = await engine.imagine(request("t1", "a cat"))
        await engine.refine(request("t1", "make it blue"))
        branch = await engine.refine(
            replace(request("t1", "make it green"), reply_to=first.turn.id)
        )
        after = await engine.refine(request("t1", "add a hat"))
    assert fake.generations[2].input_images() == [first.images[0].data]
    assert branch.turn.parent_id == first.turn.id
    assert fake.generations[3].input_images() == [branch.images[0].data]
    assert after.turn.parent_id == branch.turn.id


async def test_reroll_sends_the_same_inputs_and_moves_the_head(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    photo = png()
    async with engine_on(fake, tmp_path) as (engine, _):
        first = await engine.imagine(
            replace(request("t1", "watercolour"), attachments=(Attachment(photo, "a.png"),))
        )
        again = await engine.reroll(first.turn.id, user="UBOB")
        thread = await engine.thread_for(first.key)
    assert fake.generations[1].json == fake.generations[0].json
    assert again.images[0].data != first.images[0].data
    assert again.turn.user == "UBOB"
    assert thread is not None and thread.head_id == again.turn.id


async def test_refinement_over_the_image_limit_names_the_limit(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    async with engine_on(fake, tmp_path) as (engine, _):
        await engine.imagine(request("t1", "a tree"))
        extra = tuple(Attachment(png((i, i, i)), f"{i}.png") for i in range(3))
        with pytest.raises(TooManyImages) as refused:
            await engine.refine(replace(request("t1", "add these"), attachments=extra))
        with pytest.raises(TooManyImages):
            four = (*extra, Attachment(png(), "x.png"))
            await engine.imagine(replace(request("t2", "four"), attachments=four))
    assert "current image + at most 2 attachments" in refused.value.user_message
    assert len(fake.generations) == 1


async def test_bad_input_is_refused_before_anything_is_sent(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    async with engine_on(fake, tmp_path) as (engine, store):
        with pytest.raises(NotAnImage) as refused:
            pdf = Attachment(b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "invoice.pdf")
            await engine.imagine(replace(request("t1", "edit"), attachments=(pdf,)))
        with pytest.raises(EmptyPrompt):
            await engine.imagine(request("t1", "   "))
        with pytest.raises(UnsupportedOption):
            await engine.imagine(replace(request("t1", "wide"), ratio="7:3"))
        assert (
            await store.jobs_since(
                platform="slack", user="UALICE", since=datetime(2000, 1, 1, tzinfo=UTC)
            )
            == 0
        )
    assert "invoice.pdf" in refused.value.user_message
    assert fake.generations == []


async def test_a_declined_turn_is_stored_failed_and_the_head_stays(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    async with engine_on(fake, tmp_path) as (engine, store):
        first = await engine.imagine(request("t1", "a castle"))
        fake.queue(Outcome.prompt_blocked("PROHIBITED_CONTENT"))
        with pytest.raises(PromptBlocked) as blocked:
            await engine.refine(request("t1", "something forbidden"))
        thread = await engine.thread_for(first.key)
        failed = await store.get_turn(first.turn.id + 1)
    assert "PROHIBITED_CONTENT" in blocked.value.user_message
    assert thread is not None and thread.head_id == first.turn.id
    assert failed is not None and failed.status is TurnStatus.FAILED
    assert failed.error == blocked.value.user_message


async def test_two_messages_in_one_thread_run_one_after_the_other(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    async with engine_on(fake, tmp_path) as (engine, _):
        first = await engine.imagine(request("t1", "a boat"))
        fake.queue(Outcome.image().with_delay(0.3))
        slow = asyncio.create_task(engine.refine(request("t1", "make it red")))
        await fake.wait_for_requests(2)
        quick = asyncio.create_task(engine.refine(request("t1", "add a sail")))
        red = await slow
        sail = await quick
    assert first.images[0].data in fake.generations[1].input_images()
    assert fake.generations[2].input_images() == [red.images[0].data]  # waited for the head
    assert sail.turn.parent_id == red.turn.id


async def test_different_threads_run_in_parallel(fake: FakeGptProto, tmp_path: Path) -> None:
    fake.latency = 0.2
    async with engine_on(fake, tmp_path, max_concurrent=5) as (engine, _):
        replies = await asyncio.gather(
            *(engine.imagine(request(f"t{i}", f"picture {i}")) for i in range(5))
        )
    assert fake.peak_in_flight == 5
    assert len({reply.images[0].data for reply in replies}) == 5


async def test_queued_jobs_hear_their_place_in_line(fake: FakeGptProto, tmp_path: Path) -> None:
    fake.latency = 0.2
    heard: dict[int, list[int]] = {1: [], 2: []}

    def listener(index: int):  # type: ignore[no-untyped-def]
        async def report(position: int) -> None:
            heard[index].append(position)

        return report

    async with engine_on(fake, tmp_path, max_concurrent=1) as (engine, _):
        first = asyncio.create_task(engine.imagine(request("t0", "first")))
        await fake.wait_for_requests(1)
        second = asyncio.create_task(engine.imagine(request("t1", "second"), on_queued=listener(1)))
        async with asyncio.timeout(5):
            while not heard[1]:  # noqa: ASYNC110 - the report is the thing awaited
                await asyncio.sleep(0)
        third = asyncio.create_task(engine.imagine(request("t2", "third"), on_queued=listener(2)))
        await asyncio.gather(first, second, third)
    assert heard[1] == [1, 0]
    assert heard[2] == [2, 1, 0]


async def test_gemini_3_replays_the_model_answer_with_its_signature(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    async with engine_on(fake, tmp_path) as (engine, _):
        model = "gemini-3-pro-image-preview"
        first = await engine.imagine(replace(request("t1", "a robot"), model=model))
        await engine.refine(request("t1", "paint it gold"))
    answered = fake.generations[0]
    assert answered.model == model
    refinement = fake.generations[1].json["contents"]
    assert [content["role"] for content in refinement] == ["user", "model", "user"]
    replayed = [part for part in refinement[1]["parts"] if "thoughtSignature" in part]
    assert replayed and all(part["thoughtSignature"] in fake.signatures for part in replayed)
    assert first.images[0].data in fake.generations[1].input_images()


async def test_refused_users_reach_nothing(fake: FakeGptProto, tmp_path: Path) -> None:
    policy = AccessPolicy(blocked_users=frozenset({"UMALLORY"}))
    async with engine_on(fake, tmp_path, access=policy) as (engine, _):
        with pytest.raises(AccessDenied):
            await engine.imagine(request("t1", "anything", user="UMALLORY"))
    assert fake.generations == []


async def test_rate_limited_user_is_told_when_to_come_back(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    store = SqliteStore(tmp_path / "bot.db")
    await store.open()
    client = GptProtoClient(base_url=fake.url, api_key="sk-test")
    engine = Engine(
        store=store,
        generator=client,
        gate=JobGate(max_concurrent=2, max_queue=2),
        user_limits=UserLimits(per_minute=1, per_day=0, counter=store),
    )
    try:
        await engine.imagine(request("t1", "one"))
        with pytest.raises(UserRateLimited) as refused:
            await engine.imagine(request("t2", "two"))
    finally:
        await client.aclose()
        await store.close()
    assert "wait" in refused.value.user_message and "second" in refused.value.user_message
    assert len(fake.generations) == 1


async def test_start_reports_turns_a_crash_left_pending(fake: FakeGptProto, tmp_path: Path) -> None:
    async with engine_on(fake, tmp_path) as (engine, store):
        reply = await engine.imagine(request("t1", "a tower"))
        pending = await store.start_turn(
            reply.turn.thread_id, parent_id=reply.turn.id, user="UALICE", prompt="taller",
            ratio=None, model="gemini-2.5-flash-image", inputs=(),
        )  # fmt: skip
    async with engine_on(fake, tmp_path) as (engine, store):
        interrupted = await engine.start()
        failed = await store.get_turn(pending.id)
    assert [(turn.id, key) for turn, key in interrupted] == [(pending.id, reply.key)]
    assert failed is not None and failed.status is TurnStatus.FAILED


async def test_a_gone_turn_cannot_be_rerolled(fake: FakeGptProto, tmp_path: Path) -> None:
    async with engine_on(fake, tmp_path) as (engine, _):
        with pytest.raises(NothingToRefine):
            await engine.reroll(999, user="UALICE")
    assert fake.generations == []


async def test_reroll_honours_roles_like_every_other_job(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    policy = AccessPolicy(allowed_roles=frozenset({"R-artists"}))
    async with engine_on(fake, tmp_path, access=policy) as (engine, _):
        first = await engine.imagine(request("t1", "a kite", roles=("R-artists",)))
        with pytest.raises(AccessDenied):
            await engine.reroll(first.turn.id, user="UBOB")
        again = await engine.reroll(first.turn.id, user="UBOB", roles=("R-artists",))
    assert again.turn.user == "UBOB"
    assert len(fake.generations) == 2
