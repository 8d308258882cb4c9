"""Base64 as the answers carry it: a fast reader, but always binascii's strict verdict."""

from __future__ import annotations

import base64
import binascii
import itertools
import os
import random

import pytest

import bot.upstream.codec
from bot.errors import UnreadableResponse
from bot.upstream.codec import decode_base64, encode_base64

NOT_BASE64 = "The image service sent image data that is not base64."
# Every kind of character the readers treat differently, and an unpadded tail.
ALPHABET = "AQg+/-_= \n\t\u00e9"


def verdict(text: str) -> bytes | None:
    """What decode_base64 always made of text: one strict binascii call, None if refused."""
    if "\n" in text or "\r" in text or " " in text:
        text = "".join(text.split())
    altchars = b"-_" if ("-" in text or "_" in text) else None
    try:
        return base64.b64decode(text, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None


def decoded(text: str) -> bytes | None:
    try:
        return decode_base64(text)
    except UnreadableResponse as error:
        assert error.user_message == NOT_BASE64
        return None


def test_the_fast_reader_is_in_use() -> None:
    assert bot.upstream.codec._fast_base64() is not None, "pydantic-core no longer reads base64"


def test_every_short_text_gets_binasciis_verdict() -> None:
    texts = (
        "".join(chars)
        for size in (1, 2, 3, 4)
        for chars in itertools.product(ALPHABET, repeat=size)
    )

    wrong = [text for text in texts if text.strip() and decoded(text) != verdict(text)]

    assert wrong == []


def test_longer_texts_get_binasciis_verdict() -> None:
    rng = random.Random(20240611)
    texts = [
        "".join(rng.choice(ALPHABET) for _ in range(rng.choice((8, 12, 16)))) for _ in range(20_000)
    ]
    texts += [base64.b64encode(os.urandom(size)).decode("ascii") for size in range(1, 40)]

    wrong = [text for text in texts if text.strip() and decoded(text) != verdict(text)]

    assert wrong == []


@pytest.mark.parametrize(
    "text",
    [
        "QUI",  # missing padding: the fast reader would take it, binascii refuses
        "QQ",
        "QQ=",
        "QUJDQQ",
        "QQ==QUJD",  # data after padding
        "QU=D",
        "QUJ\u00e9",  # not ASCII
        "QUJ\t",  # whitespace decode_base64 does not strip
    ],
)
def test_malformed_base64_is_refused_with_the_same_message(text: str) -> None:
    with pytest.raises(UnreadableResponse) as caught:
        decode_base64(text)

    assert caught.value.user_message == NOT_BASE64


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("QR==", b"A"),  # stray low bits: binascii reads them, and still does
        ("+_-/", b"\xfb\xff\xbf"),  # mixed alphabets
        ("QUJD====", b"ABC"),  # binascii's strict mode lets surplus padding end the text
    ],
)
def test_what_the_fast_reader_refuses_binascii_still_reads(text: str, data: bytes) -> None:
    assert decode_base64(text) == data


@pytest.fixture
def small_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps of 8 characters (6 bytes), so that texts of a few quads go in several."""
    monkeypatch.setattr(bot.upstream.codec, "_DECODE_WHOLE", 8)
    monkeypatch.setattr(bot.upstream.codec, "_ENCODE_WHOLE", 6)


@pytest.mark.usefixtures("small_steps")
def test_texts_read_in_steps_get_the_verdict_of_one_call() -> None:
    rng = random.Random(7)
    texts = ["QUJDQQ==QUJD", "QUJDQUJDQQ==", "QUJDQUI=QUJD", "QUJD-_-_+/+/", "QUJDQUJDQUJD===="]
    texts += [
        "".join(rng.choice("AQ+/-_=") for _ in range(rng.choice((12, 16, 20)))) for _ in range(5000)
    ]
    texts += [base64.b64encode(os.urandom(size)).decode("ascii") for size in range(1, 40)]

    wrong = [text for text in texts if decoded(text) != verdict(text)]

    assert wrong == []


@pytest.mark.usefixtures("small_steps")
@pytest.mark.parametrize("size", [0, 1, 5, 6, 7, 12, 13, 100])
def test_base64_written_in_steps_joins_exactly(size: int) -> None:
    data = os.urandom(size)

    assert str(encode_base64(data)) == base64.b64encode(data).decode("ascii")
