"""The wire codecs: spliced JSON is json.dumps byte for byte; base64 and image types are strict."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest

from bot.errors import UnreadableResponse
from bot.upstream.codec import Verbatim, decode_base64, dumps, encode_json
from bot.upstream.extract import parse_json
from bot.upstream.payloads import decode_image, parse_data_url, sniff_image
from tests.fakes.gptproto_images import make_image

BIG = base64.b64encode(os.urandom(1_200_000)).decode("ascii")
SIGNATURE = base64.b64encode(os.urandom(300)).decode("ascii")

TRICKY: list[Any] = [
    [{"text": 'héllo "quoted" \\ and\nnew line'}, {"inlineData": {"data": BIG}}],
    [{"inlineData": {"mimeType": "image/png", "data": BIG}, "thoughtSignature": SIGNATURE}],
    {"long quote": "x" * 5000 + '"', "long backslash": "y" * 5000 + "\\"},
    {"long control": "z" * 5000 + "\x1f", "long delete": "w" * 5000 + "\x7f"},
    {"long unicode": "é" * 5000, "numbers": [1, 2.5, None, True]},
    [{"text": "\x00spliced\x00"}, {"inlineData": {"data": BIG}}],
    {"marker inside long data": "\x00spliced\x00" + "v" * 5000},
    [BIG, BIG[:5000], ()],
    [],
]


@pytest.mark.parametrize("value", TRICKY, ids=range(len(TRICKY)))
def test_dumps_writes_exactly_what_json_dumps_writes(value: Any) -> None:
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    assert dumps(value) == expected


def test_dumps_keeps_a_lone_surrogate_as_json_dumps_does() -> None:
    value = [{"text": "\ud800"}, {"inlineData": {"data": BIG}}]

    assert dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("value", TRICKY, ids=range(len(TRICKY)))
def test_encode_json_writes_exactly_what_json_dumps_writes(value: Any) -> None:
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

    assert encode_json(value) == expected


@pytest.mark.parametrize("marker", ["", "\x00spliced\x00"])
def test_verbatim_text_is_written_as_its_json_string(marker: str) -> None:
    data = BIG.encode("ascii")
    value = [{"text": marker}, {"inlineData": {"data": Verbatim(data[:9], data[9:])}}, "é"]

    written = encode_json(value)

    assert written == json.dumps(
        [{"text": marker}, {"inlineData": {"data": BIG}}, "é"],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")


def test_encode_json_still_refuses_what_json_cannot_write() -> None:
    with pytest.raises(TypeError):
        encode_json({"when": object()})


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": [1, 2.5, -0.0, 1e400, 123456789012345678901234567890, null, true]}',
        b'{"a": 1, "a": 2, "b": "\\u00e9 \\/ \\" \\\\"}',
        b'\xef\xbb\xbf{"bom": 1}',
        '{"utf": "sixteen"}'.encode("utf-16"),
        b'{"lone": "\\ud800"}',
        b"[" * 300 + b"]" * 300,
    ],
    ids=["numbers", "duplicates-and-escapes", "bom", "utf-16", "lone-surrogate", "deep"],
)
def test_parse_json_reads_what_json_reads_as_json_reads_it(body: bytes) -> None:
    assert repr(parse_json(body)) == repr(json.loads(body))


@pytest.mark.parametrize(
    "body", [b'{"a": 1,}', b"{'a': 1}", b'{"a": "\x01"}', b'{"a": 1} x', b'"\xff"', b"NaN x"]
)
def test_parse_json_refuses_what_json_refuses(body: bytes) -> None:
    with pytest.raises(UnreadableResponse) as caught:
        parse_json(body)

    assert caught.value.user_message == "The image service sent an answer that is not JSON."


@pytest.mark.parametrize("size", [1, 2, 3, 196_607, 196_608, 196_609, 1_500_001])
def test_decode_base64_round_trips_across_slices(size: int) -> None:
    data = os.urandom(size)

    assert decode_base64(base64.b64encode(data).decode("ascii")) == data
    assert decode_base64(base64.urlsafe_b64encode(data).decode("ascii")) == data


def test_decode_base64_tolerates_line_breaks() -> None:
    data = os.urandom(3000)

    assert decode_base64(base64.encodebytes(data).decode("ascii")) == data


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",  # truncated
        "ab!d",
        BIG[:300_000] + "=" + BIG[300_001:],  # padding in the middle, past the first slice
        BIG[:-4] + "A===",
    ],
    ids=["empty", "truncated", "bad-char", "inner-padding", "bad-padding"],
)
def test_decode_base64_is_strict(text: str) -> None:
    with pytest.raises(UnreadableResponse):
        decode_base64(text)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (make_image(1, (256, 32)), "image/png"),
        (make_image(1, (256, 32), mime="image/jpeg"), "image/jpeg"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"\x00\x00\x00\x18ftypheic\x00", "image/heic"),
        (b"<html>", None),
        (b"", None),
    ],
)
def test_sniff_image(data: bytes, expected: str | None) -> None:
    assert sniff_image(data) == expected


def test_decode_image_prefers_the_bytes_over_the_declared_type() -> None:
    jpeg = make_image(2, (256, 32), mime="image/jpeg")

    image = decode_image(base64.b64encode(jpeg).decode("ascii"), "image/png")

    assert image.mime_type == "image/jpeg"
    assert image.data == jpeg


def test_decode_image_refuses_non_images() -> None:
    with pytest.raises(UnreadableResponse):
        decode_image(base64.b64encode(b"%PDF-1.7 not a picture").decode("ascii"), "image/png")


def test_parse_data_url() -> None:
    assert parse_data_url("data:image/png;base64,QUJD") == ("image/png", "QUJD")
    assert parse_data_url("data:text/plain,hello") is None
    assert parse_data_url("https://example.invalid/a.png") is None
