"""bot.images refusals: non-images, damaged files, bombs, formats the bot cannot convert."""

from __future__ import annotations

import pytest
from PIL import Image as Pil

from bot import images
from bot.errors import ImageTooLarge, NotAnImage, UnsupportedOption
from bot.images import normalise
from bot.models import Attachment, Image
from tests.support.images import (
    ACCEPTED,
    HEIF_ACCEPTED,
    encode,
    ftyp,
    halved,
    noise,
    png_declaring,
)


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF", "invoice.pdf"),
        (b"hello, this is a text file\n", "notes.txt"),
        (b"<!DOCTYPE html><html><head><title>Login</title></head></html>", "image.png"),
        (b"", "empty.jpg"),
    ],
)
async def test_non_images_are_refused_by_name(data: bytes, name: str) -> None:
    with pytest.raises(NotAnImage) as caught:
        await normalise(Attachment(data, name), accepted=ACCEPTED)
    assert f"'{name}'" in caught.value.user_message


@pytest.mark.parametrize(
    "data",
    [
        halved(encode(noise((200, 150)), "PNG")),
        halved(encode(noise((200, 150)), "JPEG")),
        halved(encode(noise((1600, 1200)), "JPEG", quality=50)),  # also over the pixel budget
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
    ],
    ids=["png", "jpeg", "jpeg-to-downscale", "png-header-only"],
)
async def test_damaged_images_are_refused(data: bytes) -> None:
    with pytest.raises(NotAnImage) as caught:
        await normalise(Attachment(data, "cut.img"), accepted=ACCEPTED)
    assert "'cut.img'" in caught.value.user_message
    assert images.DAMAGED in caught.value.user_message


async def test_a_declared_size_over_the_source_limit_is_refused_before_decoding() -> None:
    # Decoding would fail as truncated (NotAnImage); ImageTooLarge proves nothing was decoded.
    data = png_declaring(9000, 9000)
    with pytest.raises(ImageTooLarge) as caught:
        await normalise(Attachment(data, "huge.png"), accepted=ACCEPTED)
    assert "9000x9000" in caught.value.user_message


async def test_a_decompression_bomb_is_refused() -> None:
    data = png_declaring(50_000, 50_000)
    assert len(data) < 100
    with pytest.raises(ImageTooLarge) as caught:
        await normalise(Attachment(data, "bomb.png"), accepted=ACCEPTED)
    assert "'bomb.png'" in caught.value.user_message


async def test_svg_is_refused_as_unsupported() -> None:
    data = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    with pytest.raises(UnsupportedOption, match="SVG"):
        await normalise(Attachment(data, "logo.svg"), accepted=ACCEPTED)


def pillow_reads_heif() -> bool:
    Pil.init()
    return "HEIF" in Pil.OPEN


heif_readable = pytest.mark.skipif(pillow_reads_heif(), reason="a HEIF plugin is installed")


@heif_readable
async def test_heic_is_refused_when_the_model_does_not_take_it() -> None:
    with pytest.raises(UnsupportedOption) as caught:
        await normalise(Attachment(ftyp(b"heic", b"mif1"), "IMG_0002.HEIC"), accepted=ACCEPTED)
    assert "HEIC" in caught.value.user_message
    assert "'IMG_0002.HEIC'" in caught.value.user_message


@heif_readable
async def test_heic_passes_through_when_the_model_takes_it() -> None:
    data = ftyp(b"heic", b"mif1")
    image = await normalise(Attachment(data, "IMG_0002.HEIC"), accepted=HEIF_ACCEPTED)
    assert image == Image(data, "image/heic")
