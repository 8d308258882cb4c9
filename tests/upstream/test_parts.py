"""The parts codec: a replayed part carries the image sent in place of the stored one."""

from __future__ import annotations

import base64
import json

import pytest

from bot.models import Image
from bot.upstream import reference_part, restore_parts
from tests.fakes.gptproto_images import make_image

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
