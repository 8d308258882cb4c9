"""Check, then speak: what the engine refuses before an adapter posts anything, and clicks
that are only honoured on a message of the conversation their turn belongs to."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bot.engine import ELSEWHERE, AccessPolicy, clean_prompt, visible
from bot.errors import (
    AccessDenied,
    EmptyPrompt,
    NothingToRefine,
    QueueFull,
    TooManyImages,
    UnknownModel,
    UnsupportedOption,
    UserRateLimited,
)
from tests.fakes.generator import Script
from tests.support.engine import fast_engine, request


@pytest.mark.parametrize("text", ["", "   ", "\u200b\u200b", "\x00\x07\n\t", "\u2028\u00a0"])
def test_invisible_prompts_are_not_prompts(text: str) -> None:
    assert not visible(text)


def test_a_prompt_with_one_visible_character_is_a_prompt() -> None:
    assert visible("\u200b🍌\u200b") and visible(" a ")


async def test_every_refusal_comes_before_the_job_and_nothing_is_sent() -> None:
    policy = AccessPolicy(blocked_users=frozenset({"UMALLORY"}))
    async with fast_engine(access=policy) as (engine, _, generator):
        with pytest.raises(AccessDenied):
            await engine.precheck(request("t1", "a fox", user="UMALLORY"))
        with pytest.raises(EmptyPrompt):
            await engine.precheck(request("t1", "\u200b \u200b"))
        with pytest.raises(UnsupportedOption, match="7:3"):
            await engine.precheck(replace(request("t1", "wide"), ratio="7:3"))
        with pytest.raises(UnknownModel):
            await engine.precheck(
                replace(request("t1", "old"), model="gemini-2.0-flash-preview-image-generation")
            )
        with pytest.raises(TooManyImages, match="at most 3"):
            await engine.precheck(request("t1", "ten files"), attachments=10)
        await engine.precheck(request("t1", "three files"), attachments=3)
    assert generator.calls == []


async def test_a_refinement_counts_the_current_image_before_the_files_are_fetched() -> None:
    async with fast_engine() as (engine, _, generator):
        await engine.imagine(request("t1", "a tree"))
        with pytest.raises(TooManyImages, match="current image \\+ at most 2"):
            await engine.precheck(request("t1", "add these"), refine=True, attachments=3)
        await engine.precheck(request("t1", "add these"), refine=True, attachments=2)
        # A new conversation has no current image: three files are fine there.
        await engine.precheck(request("t2", "compose"), refine=True, attachments=3)
    assert len(generator.calls) == 1


async def test_the_rate_limit_is_read_not_counted() -> None:
    async with fast_engine(per_minute=1) as (engine, _, generator):
        for _ in range(3):
            await engine.precheck(request("t1", "one"))
        await engine.imagine(request("t1", "one"))
        with pytest.raises(UserRateLimited):
            await engine.precheck(request("t2", "two"))
    assert len(generator.calls) == 1


async def test_a_full_queue_is_refused_before_anything_is_posted() -> None:
    release = asyncio.Event()
    async with fast_engine(max_concurrent=1) as (engine, _, generator):
        generator.queue(Script(release=release))
        running = asyncio.create_task(engine.imagine(request("t0", "running")))
        await generator.wait_for_calls(1)
        waiting = [
            asyncio.create_task(engine.imagine(request(f"q{index}", "waiting")))
            for index in range(10)  # fast_engine's queue holds 10
        ]
        async with asyncio.timeout(5):
            while engine.gate.queued < 10:  # noqa: ASYNC110 - the queue is the thing awaited
                await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await engine.precheck(request("t9", "one more"))
        release.set()
        await asyncio.gather(running, *waiting)


async def test_a_click_is_honoured_only_on_a_message_of_its_own_conversation() -> None:
    async with fast_engine() as (engine, _, _generator):
        alice = await engine.imagine(request("t-alice", "a private portrait"))
        bob = await engine.imagine(request("t-bob", "a kite", user="UBOB"))
        await engine.link_message(alice.turn.id, platform="slack", message_id="C1:100.1")
        await engine.link_message(bob.turn.id, platform="slack", message_id="C1:200.2")
        turn = await engine.turn_at(bob.turn.id, platform="slack", message_id="C1:200.2")
        assert turn.id == bob.turn.id
        with pytest.raises(AccessDenied) as forged:
            await engine.turn_at(alice.turn.id, platform="slack", message_id="C1:200.2")
        with pytest.raises(AccessDenied):
            await engine.turn_at(bob.turn.id, platform="slack", message_id="C9:unknown")
        with pytest.raises(NothingToRefine):
            await engine.turn_at(999, platform="slack", message_id="C1:200.2")
    assert forged.value.user_message == ELSEWHERE


class Refusals:
    """A JobObserver that keeps what it is told."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def on_job(self, **_: object) -> None:
        pass

    def on_refused(self, *, reason: str) -> None:
        self.reasons.append(reason)


async def test_each_refusal_is_counted_once_by_its_reason() -> None:
    refusals = Refusals()
    policy = AccessPolicy(blocked_users=frozenset({"UMALLORY"}))
    async with fast_engine(access=policy, per_minute=1, observer=refusals) as (engine, _, _gen):
        with pytest.raises(AccessDenied):
            await engine.precheck(request("t1", "a fox", user="UMALLORY"))
        with pytest.raises(EmptyPrompt):
            await engine.refine(request("t1", "\u200b"))  # refine falls back to imagine: once
        await engine.imagine(request("t1", "a fox"))
        with pytest.raises(UserRateLimited):
            await engine.imagine(request("t2", "another"))
        with pytest.raises(NothingToRefine):
            await engine.reroll(999, user="UALICE")
    assert refusals.reasons == ["access", "input", "rate_limit", "input"]


def test_a_prompt_loses_its_control_characters_and_broken_surrogates() -> None:
    assert clean_prompt("  \x1b[31mred\x1b[0m fox\x00 \ud800 moon\n\tsky  ") == (
        "[31mred[0m fox ? moon\n\tsky"
    )


async def test_a_hostile_prompt_reaches_the_model_cleaned_and_never_crashes() -> None:
    async with fast_engine() as (engine, _, generator):
        reply = await engine.imagine(request("t1", "a fox\x00\x07 \udcff in snow"))
    assert generator.calls[0].texts == ["a fox ? in snow"]
    assert reply.turn.prompt == "a fox ? in snow"
