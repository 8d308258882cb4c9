"""The bot's own output passes the gate an attachment passes: before it is kept, and sent back.

A result is stored as done only once it decodes whole within the pixel budget; the user gets
the model's bytes untouched, and the model gets them back normalised like any attachment.
"""

from __future__ import annotations

import base64
import io
import json
import resource
import struct
import zlib
from collections.abc import Callable
from dataclasses import replace

import pytest
from PIL import Image as Pil

from bot.errors import DamagedImage, NothingToRefine
from bot.images import MAX_IMAGE_BYTES, sniff
from bot.models import Image, ThreadKey, TurnStatus, Usage
from storage.base import Store
from tests.fakes.generator import Script
from tests.support.engine import fast_engine, request
from tests.support.images import BLUE, RED, encode, halved, halves, noise, png_declaring

DAMAGED = "The model's image arrived damaged; please try again."
GEMINI_3 = "gemini-3-pro-image-preview"


def gif() -> bytes:
    return encode(halves((320, 200), RED, BLUE), "GIF")


def black_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG, all black: tens of kilobytes that decode to width x height bytes."""
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(
        compressor.compress(row * min(1000, height - start)) for start in range(0, height, 1000)
    )
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    chunks = ((b"IHDR", header), (b"IDAT", idat + compressor.flush()), (b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        for kind, data in chunks
    )


def size_of(data: bytes) -> tuple[int, int]:
    with Pil.open(io.BytesIO(data)) as opened:
        opened.load()
        return opened.size


async def head_of(store: Store, key: ThreadKey) -> int | None:
    thread = await store.get_thread(key)
    return None if thread is None else thread.head_id


async def test_a_gif_result_is_delivered_as_gif_and_sent_back_as_png() -> None:
    picture = gif()
    async with fast_engine() as (engine, store, generator):
        generator.queue(Script(image=Image(picture, "image/gif")))
        first = await engine.imagine(request("t1", "a flag"))
        stored = await store.load_images(first.turn.outputs)
        second = await engine.refine(request("t1", "make it wave"))
    assert first.images[0] == Image(picture, "image/gif")
    assert stored[0].data == picture
    [sent] = generator.calls[1].input_images
    assert sniff(sent) == "image/png" and size_of(sent) == (320, 200)
    assert second.turn.status is TurnStatus.DONE


async def test_a_gemini_3_replay_carries_the_converted_image_and_its_signature() -> None:
    picture = gif()
    async with fast_engine() as (engine, _, generator):
        generator.queue(Script(image=Image(picture, "image/gif")))
        await engine.imagine(replace(request("t1", "a flag"), model=GEMINI_3))
        await engine.refine(request("t1", "make it wave"))
    [part] = [part for part in generator.calls[1].replayed if "inlineData" in part]
    sent = base64.b64decode(part["inlineData"]["data"])
    assert part["inlineData"]["mimeType"] == "image/png" and sniff(sent) == "image/png"
    assert part["thoughtSignature"] == "signature-1-0"
    assert size_of(sent) == (320, 200)


async def test_a_result_over_the_inline_limit_is_delivered_whole_and_sent_back_within_it() -> None:
    big = encode(noise((1800, 1800)), "PNG")
    assert len(big) > 9_500_000
    async with fast_engine() as (engine, _, generator):
        generator.queue(Script(image=Image(big, "image/png")))
        first = await engine.imagine(request("t1", "static"))
        await engine.refine(request("t1", "calmer"))
    assert first.images[0].data == big
    [sent] = generator.calls[1].input_images
    assert len(sent) <= MAX_IMAGE_BYTES == 7_000_000
    assert sniff(sent) in ("image/png", "image/jpeg")


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"),
                                           ("WEBP", "image/webp")])  # fmt: skip
async def test_small_whole_results_go_back_byte_identical(fmt: str, mime: str) -> None:
    picture = encode(noise((200, 120)), fmt)
    async with fast_engine() as (engine, _, generator):
        generator.queue(Script(image=Image(picture, mime)))
        await engine.imagine(request("t1", "grain"))
        await engine.refine(request("t1", "less grain"))
    assert generator.calls[1].input_images == [picture]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
async def test_a_truncated_result_fails_the_turn_and_keeps_the_head(fmt: str) -> None:
    cut = halved(encode(noise((256, 256)), fmt))
    async with fast_engine() as (engine, store, generator):
        first = await engine.imagine(request("t1", "a lake"))
        generator.queue(Script(image=Image(cut, f"image/{fmt.lower()}")))
        with pytest.raises(DamagedImage) as caught:
            await engine.refine(request("t1", "add a boat"))
        failed = await store.get_turn(first.turn.id + 1)
        head = await head_of(store, first.key)
        kept = await store.load_images([Image(cut, "image/png").sha256])
    assert caught.value.user_message == DAMAGED
    assert failed is not None and failed.parent_id == first.turn.id
    assert (failed.status, failed.error, failed.outputs) == (TurnStatus.FAILED, DAMAGED, ())
    assert head == first.turn.id
    assert kept == []


@pytest.mark.parametrize("make", [black_png, png_declaring], ids=["real", "header-only"])
async def test_a_20000_square_result_is_refused_before_it_is_decoded(
    make: Callable[[int, int], bytes],
) -> None:
    bomb = make(20000, 20000)
    assert len(bomb) < 200_000
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    async with fast_engine() as (engine, store, generator):
        generator.queue(Script(image=Image(bomb, "image/png")))
        with pytest.raises(DamagedImage, match="more pixels than the bot can safely open"):
            await engine.imagine(request("t1", "a huge field"))
        turn = await store.get_turn(1)
        head = await head_of(store, request("t1").key)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    assert grown < 100 * 1024 * 1024  # decoding it would take 400 MB
    assert turn is not None and turn.status is TurnStatus.FAILED
    assert head is None


def test_the_real_bomb_is_a_real_png() -> None:
    small = black_png(3000, 2000)  # the same construction, small enough to decode
    with Pil.open(io.BytesIO(small)) as opened:
        opened.load()
        assert (opened.size, opened.mode, opened.getextrema()) == ((3000, 2000), "1", (0, 0))


async def test_a_stored_result_that_cannot_be_sent_back_is_refused_before_any_call() -> None:
    async with fast_engine() as (engine, store, generator):
        first = await engine.imagine(request("t1", "a hill"))
        # A result kept before outputs were checked: its bytes are damaged.
        turn = await store.start_turn(
            first.turn.thread_id, parent_id=first.turn.id, user="UALICE", prompt="older",
            ratio=None, model=first.turn.model, inputs=(), owner="older", lease=30.0,
        )  # fmt: skip
        damaged = Image(halved(encode(noise((128, 128)), "PNG")), "image/png")
        part = {"inlineData": {"mimeType": "image/png", "sha256": damaged.sha256}}
        await store.finish_turn(
            turn.id, owner="older", outputs=(damaged,), text="", usage=Usage(),
            parts_json=json.dumps([part]),
        )  # fmt: skip
        with pytest.raises(NothingToRefine, match="cannot be sent back"):
            await engine.refine(request("t1", "add a tree"))
    assert len(generator.calls) == 1
