"""The engine over the wire: real SQLite store, real gptproto client, the upstream fake over HTTP.

What the engine decides on its ports alone is proven faster in test_threads.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image as PILImage

import bot.upstream.codec
import bot.upstream.parts
from bot.models import Attachment, TurnStatus
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


async def test_different_threads_run_in_parallel(fake: FakeGptProto, tmp_path: Path) -> None:
    fake.latency = 0.2
    async with engine_on(fake, tmp_path, max_concurrent=5) as (engine, _):
        replies = await asyncio.gather(
            *(engine.imagine(request(f"t{i}", f"picture {i}")) for i in range(5))
        )
    assert fake.peak_in_flight == 5
    assert len({reply.images[0].data for reply in replies}) == 5


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


async def test_a_gemini_3_refinement_writes_the_large_current_image_off_the_loop(
    fake: FakeGptProto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []
    real = bot.upstream.codec.encode_base64

    def recording(data: bytes) -> object:
        threads.append(threading.current_thread())
        return real(data)

    monkeypatch.setattr(bot.upstream.parts, "encode_base64", recording)
    fake.image_padding = 1_000_000
    async with engine_on(fake, tmp_path) as (engine, _):
        model = "gemini-3-pro-image-preview"
        first = await engine.imagine(replace(request("t1", "a robot"), model=model))
        await engine.refine(request("t1", "paint it gold"))
    assert len(first.images[0].data) > 1_000_000
    assert fake.generations[1].input_images()[-1] == first.images[0].data
    assert threads and threading.main_thread() not in threads
