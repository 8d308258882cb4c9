"""The parts codec: a replayed part carries the image sent in place of the stored one."""

from __future__ import annotations

import base64
import json
import threading

import pytest

import bot.upstream.codec
import bot.upstream.parts
from bot.models import Image
from bot.upstream import (
    Content,
    GenerationRequest,
    GptProtoClient,
    Part,
    reference_part,
    restore_parts,
)
from bot.upstream.codec import Verbatim
from tests.fakes.gptproto import FakeGptProto
from tests.fakes.gptproto_images import make_image

PRO = "gemini-3-pro-image-preview"

STORED = Image(b"GIF89a" + b"\x00" * 32, "image/gif")
CONVERTED = Image(make_image(4, (256, 64)), "image/png")


@pytest.mark.parametrize(("inline", "mime"), [("inlineData", "mimeType"),
                                              ("inline_data", "mime_type")])  # fmt: skip
def test_a_converted_image_replaces_bytes_and_type_and_keeps_the_signature(
    inline: str, mime: str
) -> None:
    part = {inline: {mime: "image/gif", "data": "R0lG"}, "thoughtSignature": "c2lnbmVk+/=="}
    stored = json.dumps([reference_part(part, STORED)])

    [restored] = restore_parts(stored, {STORED.sha256: CONVERTED})

    replayed = json.loads(restored.raw_json or "")
    assert list(replayed) == [inline, "thoughtSignature"]
    assert list(replayed[inline]) == [mime, "data"]
    assert replayed[inline][mime] == "image/png"
    assert base64.b64decode(replayed[inline]["data"]) == CONVERTED.data
    assert replayed["thoughtSignature"] == "c2lnbmVk+/=="


def test_an_image_sent_as_it_was_stored_leaves_the_part_as_it_was() -> None:
    part = {"inlineData": {"mimeType": "image/png", "data": "iVBO"}, "thoughtSignature": "s"}
    stored = json.dumps([reference_part(part, CONVERTED)])

    [restored] = restore_parts(stored, {CONVERTED.sha256: CONVERTED})

    data = base64.b64encode(CONVERTED.data).decode("ascii")
    expected = {**part, "inlineData": {"mimeType": "image/png", "data": data}}
    assert json.loads(restored.raw_json or "") == expected


def test_a_part_that_declared_no_type_gets_one() -> None:
    stored = json.dumps([{"inlineData": {"sha256": STORED.sha256}}])

    [restored] = restore_parts(stored, {STORED.sha256: CONVERTED})

    assert json.loads(restored.raw_json or "")["inlineData"]["mimeType"] == "image/png"


def test_parts_without_an_image_are_replayed_as_they_were_stored() -> None:
    parts = [
        {"text": 'Drafting é "x"', "thought": True},
        {"inlineData": {"mimeType": "image/png", "data": "iVBO"}, "thought": True},
        {"inlineData": {"mimeType": "image/png", "sha256": "0" * 64}},  # its image is gone
        "a stray string",
        {"text": "Here it is.", "thoughtSignature": "c2lnbmVk+/=="},
    ]

    restored = restore_parts(json.dumps(parts), {})

    expected = [json.dumps(part, separators=(",", ":")) for part in parts[:2] + parts[3:]]
    assert [part.raw_json for part in restored] == expected


@pytest.fixture
def encoding_threads(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The threads a replayed image's base64 was written on."""
    threads: list[threading.Thread] = []
    real = bot.upstream.codec.encode_base64

    def recording(data: bytes) -> Verbatim:
        threads.append(threading.current_thread())
        return real(data)

    monkeypatch.setattr(bot.upstream.parts, "encode_base64", recording)
    return threads


@pytest.mark.parametrize("padding", [0, 1_000_000], ids=["small", "large"])
async def test_a_replayed_image_is_written_with_the_request_off_the_loop_when_large(
    gptproto: FakeGptProto,
    client: GptProtoClient,
    encoding_threads: list[threading.Thread],
    padding: int,
) -> None:
    asked = Content("user", (Part(text="a fox"),))
    first = await client.generate(GenerationRequest(PRO, (asked,)))
    current = Image(make_image(902, (256, 256), padding=padding), "image/png")
    answer = restore_parts(first.parts_json, {first.images[0].sha256: current})
    assert encoding_threads == []  # restoring the parts wrote no base64
    history = (asked, Content("model", answer), Content("user", (Part(text="bluer"),)))

    await client.generate(GenerationRequest(PRO, history))

    assert gptproto.generations[1].input_images()[-1] == current.data
    on_loop = [thread is threading.main_thread() for thread in encoding_threads]
    assert on_loop == [not padding]
