"""The engine's behaviour on its ports alone: the in-memory store and the in-process generator.

Nothing here speaks HTTP or touches the disk; what travels on the wire is proven in
test_engine.py, over the real client and the gptproto fake.
"""

from __future__ import annotations

import asyncio
import base64
import io
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from PIL import Image as PILImage

from bot.engine import AccessPolicy
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
from bot.models import Attachment, Reply, TurnStatus
from tests.fakes.generator import Script
from tests.fakes.gptproto import image_serial
from tests.support.engine import fast_engine, request


def png(colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


async def test_a_new_image_becomes_the_head_and_its_bytes_are_kept() -> None:
    async with fast_engine() as (engine, store, generator):
        reply = await engine.imagine(request("t1", "a red fox"))
        thread = await engine.thread_for(reply.key)
        stored = await store.load_images(reply.turn.outputs)
    assert reply.images == generator.calls[0].produced
    assert [image.data for image in stored] == [reply.images[0].data]
    assert (reply.turn.number, reply.turn.status) == (1, TurnStatus.DONE)
    assert thread is not None and thread.head_id == reply.turn.id


async def test_turn_ten_sends_the_current_image_and_a_window_of_prompts() -> None:
    async with fast_engine() as (engine, _, generator):
        await engine.imagine(request("t1", "a quiet harbour"))
        for step in range(2, 11):
            await engine.refine(request("t1", f"change number {step}"))
    turn_ten = generator.calls[9]
    assert len(turn_ten.input_images) == 1
    assert image_serial(turn_ten.input_images[0]) == 9  # the image turn 9 made
    context = "\n".join(turn_ten.texts)
    assert "change number 3" not in context  # older than the 6-prompt window
    assert "change number 4" in context and "change number 10" in context


async def test_reply_to_an_earlier_turn_branches_from_its_image() -> None:
    async with fast_engine() as (engine, _, generator):
        first = await engine.imagine(request("t1", "a cat"))
        await engine.refine(request("t1", "make it blue"))
        branch = await engine.refine(
            replace(request("t1", "make it green"), reply_to=first.turn.id)
        )
        after = await engine.refine(request("t1", "add a hat"))
    assert generator.calls[2].input_images == [first.images[0].data]
    assert branch.turn.parent_id == first.turn.id
    assert generator.calls[3].input_images == [branch.images[0].data]
    assert after.turn.parent_id == branch.turn.id


async def test_reroll_sends_the_same_inputs_and_moves_the_head() -> None:
    photo = png()
    async with fast_engine() as (engine, _, generator):
        first = await engine.imagine(
            replace(request("t1", "watercolour"), attachments=(Attachment(photo, "a.png"),))
        )
        again = await engine.reroll(first.turn.id, user="UBOB")
        thread = await engine.thread_for(first.key)
    assert generator.calls[1].request == generator.calls[0].request
    assert again.images[0].data != first.images[0].data
    assert again.turn.user == "UBOB"
    assert thread is not None and thread.head_id == again.turn.id


async def test_refinement_over_the_image_limit_names_the_limit() -> None:
    async with fast_engine() as (engine, _, generator):
        await engine.imagine(request("t1", "a tree"))
        extra = tuple(Attachment(png((i, i, i)), f"{i}.png") for i in range(3))
        with pytest.raises(TooManyImages) as refused:
            await engine.refine(replace(request("t1", "add these"), attachments=extra))
        with pytest.raises(TooManyImages):
            four = (*extra, Attachment(png(), "x.png"))
            await engine.imagine(replace(request("t2", "four"), attachments=four))
    assert "current image + at most 2 attachments" in refused.value.user_message
    assert len(generator.calls) == 1


async def test_bad_input_is_refused_before_anything_is_sent() -> None:
    async with fast_engine() as (engine, store, generator):
        with pytest.raises(NotAnImage) as refused:
            pdf = Attachment(b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "invoice.pdf")
            await engine.imagine(replace(request("t1", "edit"), attachments=(pdf,)))
        with pytest.raises(EmptyPrompt):
            await engine.imagine(request("t1", "   "))
        with pytest.raises(UnsupportedOption):
            await engine.imagine(replace(request("t1", "wide"), ratio="7:3"))
        since = datetime(2000, 1, 1, tzinfo=UTC)
        assert await store.jobs_since(platform="slack", user="UALICE", since=since) == 0
    assert "invoice.pdf" in refused.value.user_message
    assert generator.calls == []


async def test_a_declined_turn_is_stored_failed_and_the_head_stays() -> None:
    async with fast_engine() as (engine, store, generator):
        first = await engine.imagine(request("t1", "a castle"))
        generator.queue(Script(error=PromptBlocked("PROHIBITED_CONTENT")))
        with pytest.raises(PromptBlocked) as blocked:
            await engine.refine(request("t1", "something forbidden"))
        thread = await engine.thread_for(first.key)
        failed = await store.get_turn(first.turn.id + 1)
    assert "PROHIBITED_CONTENT" in blocked.value.user_message
    assert thread is not None and thread.head_id == first.turn.id
    assert failed is not None and failed.status is TurnStatus.FAILED
    assert failed.error == blocked.value.user_message


async def test_two_messages_in_one_thread_run_one_after_the_other() -> None:
    async with fast_engine() as (engine, _, generator):
        first = await engine.imagine(request("t1", "a boat"))
        release = asyncio.Event()
        generator.queue(Script(release=release))
        slow = asyncio.create_task(engine.refine(request("t1", "make it red")))
        await generator.wait_for_calls(2)
        quick = asyncio.create_task(engine.refine(request("t1", "add a sail")))
        release.set()
        red, sail = await slow, await quick
    assert first.images[0].data in generator.calls[1].input_images
    assert generator.calls[2].input_images == [red.images[0].data]
    assert sail.turn.parent_id == red.turn.id


async def test_different_threads_run_in_parallel() -> None:
    release = asyncio.Event()
    async with fast_engine(max_concurrent=5) as (engine, _, generator):
        generator.queue(*(Script(release=release) for _ in range(5)))
        jobs = [asyncio.create_task(engine.imagine(request(f"t{i}", f"p {i}"))) for i in range(5)]
        await generator.wait_for_calls(5)
        release.set()
        replies = await asyncio.gather(*jobs)
    assert generator.peak_in_flight == 5
    assert len({reply.images[0].data for reply in replies}) == 5


async def test_queued_jobs_hear_their_place_in_line() -> None:
    heard: dict[str, list[int]] = {"second": [], "third": []}

    def listener(name: str):  # type: ignore[no-untyped-def]
        async def report(position: int) -> None:
            heard[name].append(position)

        return report

    async def hear(name: str, count: int) -> None:
        async with asyncio.timeout(5):
            while len(heard[name]) < count:  # noqa: ASYNC110 - the report is the thing awaited
                await asyncio.sleep(0)

    releases = [asyncio.Event() for _ in range(3)]
    async with fast_engine(max_concurrent=1) as (engine, _, generator):
        generator.queue(*(Script(release=release) for release in releases))
        first = asyncio.create_task(engine.imagine(request("t0", "first")))
        await generator.wait_for_calls(1)
        second = asyncio.create_task(
            engine.imagine(request("t1", "second"), on_queued=listener("second"))
        )
        await hear("second", 1)
        third = asyncio.create_task(
            engine.imagine(request("t2", "third"), on_queued=listener("third"))
        )
        await hear("third", 1)
        releases[0].set()
        await hear("third", 2)
        releases[1].set()
        releases[2].set()
        await asyncio.gather(first, second, third)
    assert heard["second"] == [1, 0]
    assert heard["third"] == [2, 1, 0]


async def test_gemini_3_replays_the_signed_answer() -> None:
    async with fast_engine() as (engine, _, generator):
        model = "gemini-3-pro-image-preview"
        first = await engine.imagine(replace(request("t1", "a robot"), model=model))
        gold = await engine.refine(request("t1", "paint it gold"))
    refinement = generator.calls[1]
    assert [content.role for content in refinement.request.contents] == ["user", "model", "user"]
    [answer] = [part for part in refinement.replayed if "inlineData" in part]
    assert answer["thoughtSignature"] in generator.signatures
    assert base64.b64decode(answer["inlineData"]["data"]) == first.images[0].data
    assert gold.turn.model == model  # a refinement keeps the thread's model


async def test_refused_users_reach_nothing() -> None:
    policy = AccessPolicy(blocked_users=frozenset({"UMALLORY"}))
    async with fast_engine(access=policy) as (engine, _, generator):
        with pytest.raises(AccessDenied):
            await engine.imagine(request("t1", "anything", user="UMALLORY"))
    assert generator.calls == []


async def test_a_rate_limited_user_is_told_when_to_come_back() -> None:
    async with fast_engine(per_minute=1) as (engine, _, generator):
        await engine.imagine(request("t1", "one"))
        with pytest.raises(UserRateLimited) as refused:
            await engine.imagine(request("t2", "two"))
    assert "wait" in refused.value.user_message and "second" in refused.value.user_message
    assert len(generator.calls) == 1


async def test_recover_reports_turns_a_dead_process_left_pending() -> None:
    async with fast_engine() as (engine, store, _):
        reply = await engine.imagine(request("t1", "a tower"))
        pending = await store.start_turn(
            reply.turn.thread_id, parent_id=reply.turn.id, user="UALICE", prompt="taller",
            ratio=None, model="gemini-2.5-flash-image", inputs=(), owner="dead", lease=0.0,
        )  # fmt: skip
        interrupted = await engine.recover(platforms=(reply.key.platform,))
        failed = await store.get_turn(pending.id)
    assert [(turn.id, key) for turn, key in interrupted] == [(pending.id, reply.key)]
    assert failed is not None and failed.status is TurnStatus.FAILED


async def test_a_gone_turn_cannot_be_rerolled() -> None:
    async with fast_engine() as (engine, _, generator):
        with pytest.raises(NothingToRefine):
            await engine.reroll(999, user="UALICE")
    assert generator.calls == []


async def test_reroll_honours_roles_like_every_other_job() -> None:
    policy = AccessPolicy(allowed_roles=frozenset({"R-artists"}))
    async with fast_engine(access=policy) as (engine, _, generator):
        first = await engine.imagine(request("t1", "a kite", roles=("R-artists",)))
        with pytest.raises(AccessDenied):
            await engine.reroll(first.turn.id, user="UBOB")
        again = await engine.reroll(first.turn.id, user="UBOB", roles=("R-artists",))
    assert again.turn.user == "UBOB"
    assert len(generator.calls) == 2


async def test_only_a_delivered_result_becomes_the_head() -> None:
    async def lost(reply: Reply) -> None:
        raise ConnectionError("the upload never arrived")

    delivered: list[int] = []

    async def post(reply: Reply) -> None:
        delivered.append(reply.turn.id)

    async with fast_engine() as (engine, store, generator):
        first = await engine.imagine(request("t1", "a lighthouse"), deliver=post)
        with pytest.raises(ConnectionError):
            await engine.refine(request("t1", "make it night"), deliver=lost)
        thread = await engine.thread_for(first.key)
        assert thread is not None and thread.head_id == first.turn.id
        third = await engine.refine(request("t1", "add a boat"), deliver=post)
        unposted = await store.get_turn(first.turn.id + 1)
    assert generator.calls[2].input_images == [first.images[0].data]
    assert third.turn.parent_id == first.turn.id
    assert delivered == [first.turn.id, third.turn.id]
    assert unposted is not None and unposted.status is TurnStatus.DONE  # kept, never the head


async def test_a_refinement_waits_until_the_turn_before_it_is_delivered() -> None:
    posting = asyncio.Event()
    posted = asyncio.Event()

    async def slow_post(reply: Reply) -> None:
        posting.set()
        await posted.wait()

    async with fast_engine() as (engine, _, generator):
        await engine.imagine(request("t1", "a boat"))
        red = asyncio.create_task(engine.refine(request("t1", "make it red"), deliver=slow_post))
        await posting.wait()
        sail = asyncio.create_task(engine.refine(request("t1", "add a sail")))
        await generator.wait_for_calls(2)
        posted.set()
        red_reply, sail_reply = await red, await sail
    assert generator.calls[2].input_images == [red_reply.images[0].data]
    assert sail_reply.turn.parent_id == red_reply.turn.id
