"""bot.images on real files made here with Pillow: pass-through, conversion, budgets, threads."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image as Pil
from PIL import ImageFile

from bot.errors import NotAnImage
from bot.images import MAX_IMAGE_BYTES, MAX_PIXELS, budget, normalise, normalise_all
from bot.models import Attachment, Image
from tests.support.images import (
    ACCEPTED,
    BLUE,
    GREEN,
    RED,
    close_to,
    decode,
    encode,
    halves,
    noise,
)

# -- pass-through ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime", "options"),
    [
        ("PNG", "image/png", {}),
        ("JPEG", "image/jpeg", {"quality": 85}),
        ("WEBP", "image/webp", {"quality": 80}),
    ],
)
async def test_small_accepted_images_come_back_byte_identical(
    fmt: str, mime: str, options: dict[str, Any]
) -> None:
    data = encode(halves((320, 200), RED, BLUE), fmt, **options)
    image = await normalise(Attachment(data, "photo.bin"), accepted=ACCEPTED)
    assert image == Image(data, mime)


async def test_a_sixteen_bit_png_passes_through() -> None:
    data = encode(Pil.new("I;16", (64, 48), 40000), "PNG")
    image = await normalise(Attachment(data, "depth.png"), accepted=ACCEPTED)
    assert image.data == data


async def test_a_multi_picture_jpeg_passes_through_as_jpeg() -> None:
    frames = [Pil.new("RGB", (64, 48), RED), Pil.new("RGB", (64, 48), BLUE)]
    data = encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    assert Pil.open(io.BytesIO(data)).format == "MPO"
    image = await normalise(Attachment(data, "portrait.jpg"), accepted=ACCEPTED)
    assert image == Image(data, "image/jpeg")


async def test_a_png_cut_before_its_end_chunk_is_rewritten_whole() -> None:
    whole = encode(halves((64, 48), RED, BLUE), "PNG")
    cut = whole[:-12]  # the pixels are all there, the IEND chunk is not
    image = await normalise(Attachment(cut, "cut.png"), accepted=ACCEPTED)
    assert image.mime_type == "image/png"
    assert image.data.endswith(whole[-12:])
    assert decode(image).tobytes() == Pil.open(io.BytesIO(whole)).tobytes()


# -- conversion --------------------------------------------------------------------------


async def test_an_animated_gif_becomes_a_png_of_its_first_frame() -> None:
    frames = [Pil.new("RGB", (40, 30), colour) for colour in (RED, GREEN, BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    image = await normalise(Attachment(data, "party.gif"), accepted=ACCEPTED)
    assert image.mime_type == "image/png"
    converted = decode(image)
    assert converted.size == (40, 30)
    assert converted.convert("RGB").getpixel((20, 15)) == RED


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO", "QOI"])
async def test_formats_the_model_does_not_take_become_png(fmt: str) -> None:
    source = halves((48, 48), RED, BLUE)
    image = await normalise(Attachment(encode(source, fmt), f"drawing.{fmt}"), accepted=ACCEPTED)
    assert image.mime_type == "image/png"
    converted = decode(image).convert("RGB")
    assert converted.size == (48, 48)
    assert (converted.getpixel((2, 24)), converted.getpixel((45, 24))) == (RED, BLUE)


async def test_webp_becomes_png_with_its_alpha_when_the_model_does_not_take_webp() -> None:
    data = encode(halves((64, 32), (255, 0, 0, 255), (0, 0, 255, 0)), "WEBP", lossless=True)
    accepted = frozenset({"image/png", "image/jpeg"})
    image = await normalise(Attachment(data, "sticker.webp"), accepted=accepted)
    assert image.mime_type == "image/png"
    converted = decode(image)
    assert converted.mode == "RGBA"
    assert converted.getpixel((5, 5)) == (255, 0, 0, 255)
    assert converted.getpixel((60, 5))[3] == 0  # type: ignore[index]


async def test_an_animated_webp_becomes_its_first_frame() -> None:
    frames = [Pil.new("RGB", (40, 30), colour) for colour in (GREEN, RED)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    image = await normalise(Attachment(data, "loop.webp"), accepted=ACCEPTED)
    assert image.mime_type == "image/png"
    assert decode(image).convert("RGB").getpixel((20, 15)) == GREEN


async def test_avif_is_converted_when_the_model_does_not_take_it() -> None:
    data = encode(halves((64, 64), RED, BLUE), "AVIF", quality=90)
    image = await normalise(Attachment(data, "photo.avif"), accepted=ACCEPTED)
    assert image.mime_type == "image/jpeg"
    converted = decode(image)
    assert close_to(converted.getpixel((4, 32)), RED, 30)


async def test_exif_orientation_is_applied() -> None:
    # Stored landscape with a red top-left corner; orientation 6 means "turn 90 degrees
    # clockwise to display", which puts that corner at the top right of a portrait image.
    stored = Pil.new("RGB", (120, 80), BLUE)
    stored.paste(Pil.new("RGB", (30, 30), RED), (0, 0))
    exif = Pil.Exif()
    exif[0x0112] = 6
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    image = await normalise(Attachment(data, "phone.jpg"), accepted=ACCEPTED)
    upright = decode(image)
    assert upright.size == (80, 120)
    assert close_to(upright.getpixel((75, 5)), RED)
    assert close_to(upright.getpixel((5, 5)), BLUE)
    assert upright.getexif().get(0x0112, 1) == 1  # no viewer turns it a second time


async def test_a_cmyk_jpeg_becomes_rgb() -> None:
    data = encode(Pil.new("CMYK", (64, 64), (0, 255, 0, 0)), "JPEG", quality=95)
    image = await normalise(Attachment(data, "print.jpg"), accepted=ACCEPTED)
    converted = decode(image)
    assert (image.mime_type, converted.mode) == ("image/jpeg", "RGB")
    assert close_to(converted.getpixel((32, 32)), (255, 0, 255))


async def test_a_phone_photo_is_downscaled_to_the_pixel_budget() -> None:
    data = encode(halves((4032, 3024), RED, BLUE), "JPEG", quality=90)
    image = await normalise(Attachment(data, "IMG_0001.jpg"), accepted=ACCEPTED)
    smaller = decode(image)
    assert image.mime_type == "image/jpeg"
    assert smaller.width * smaller.height <= MAX_PIXELS
    assert smaller.width * smaller.height >= MAX_PIXELS * budget.DRAFT_TOLERANCE**2
    assert abs(smaller.width / smaller.height - 4032 / 3024) < 0.01
    assert close_to(smaller.getpixel((10, 10)), RED)
    assert close_to(smaller.getpixel((smaller.width - 10, 10)), BLUE)


async def test_a_photo_over_the_byte_limit_is_shrunk_under_it() -> None:
    data = encode(noise((2000, 1500)), "JPEG", quality=100, subsampling=0)
    assert len(data) > MAX_IMAGE_BYTES
    image = await normalise(Attachment(data, "noise.jpg"), accepted=ACCEPTED)
    smaller = decode(image)
    assert image.mime_type == "image/jpeg"
    assert len(image.data) <= MAX_IMAGE_BYTES
    assert smaller.width * smaller.height <= MAX_PIXELS
    assert abs(smaller.width / smaller.height - 2000 / 1500) < 0.01


async def test_a_forty_megabyte_photo_is_downscaled() -> None:
    data = encode(noise((4160, 3120)), "JPEG", quality=100, subsampling=0)
    assert len(data) > 35_000_000
    image = await normalise(Attachment(data, "camera.jpg"), accepted=ACCEPTED)
    smaller = decode(image)
    assert len(image.data) <= MAX_IMAGE_BYTES
    assert smaller.width * smaller.height <= MAX_PIXELS
    assert abs(smaller.width / smaller.height - 4160 / 3120) < 0.01


async def test_a_panorama_is_held_to_the_longest_side() -> None:
    data = encode(halves((6000, 200), RED, BLUE), "PNG")
    image = await normalise(Attachment(data, "panorama.png"), accepted=ACCEPTED)
    assert decode(image).size == (budget.MAX_SIDE, 136)


async def test_an_opaque_graphic_too_big_as_png_is_sent_as_jpeg() -> None:
    data = encode(noise((600, 400)), "BMP")
    image = await normalise(Attachment(data, "scan.bmp"), accepted=ACCEPTED, max_bytes=400_000)
    assert image.mime_type == "image/jpeg"
    assert len(image.data) <= 400_000
    assert decode(image).size == (600, 400)


async def test_a_transparent_graphic_too_big_stays_png_and_shrinks() -> None:
    source = noise((400, 300)).convert("RGBA")
    source.putalpha(Pil.new("L", source.size, 128))
    image = await normalise(
        Attachment(encode(source, "PNG"), "overlay.png"), accepted=ACCEPTED, max_bytes=150_000
    )
    shrunk = decode(image)
    assert (image.mime_type, shrunk.mode) == ("image/png", "RGBA")
    assert len(image.data) <= 150_000
    assert shrunk.width < 400
    assert abs(shrunk.width / shrunk.height - 400 / 300) < 0.02


async def test_a_sixteen_bit_png_is_scaled_not_clipped_when_converted() -> None:
    data = encode(Pil.new("I;16", (64, 48), 40000), "PNG")
    image = await normalise(Attachment(data, "depth.png"), accepted=ACCEPTED, max_pixels=24 * 32)
    converted = decode(image)
    assert converted.size == (32, 24)
    assert abs(converted.getpixel((5, 5)) - 40000 // 256) <= 1  # type: ignore[operator]


# -- many at once, off the loop ------------------------------------------------------------


async def test_normalise_all_keeps_order() -> None:
    attachments = [
        Attachment(encode(Pil.new("RGB", (30, 20), RED), "GIF"), "a.gif"),
        Attachment(encode(Pil.new("RGB", (30, 20), GREEN), "PNG"), "b.png"),
        Attachment(encode(Pil.new("RGB", (30, 20), BLUE), "BMP"), "c.bmp"),
    ]
    results = await normalise_all(attachments, accepted=ACCEPTED)
    assert [decode(image).convert("RGB").getpixel((1, 1)) for image in results] == [
        RED,
        GREEN,
        BLUE,
    ]
    assert results[1].data == attachments[1].data


async def test_normalise_all_reports_the_first_bad_attachment_in_order() -> None:
    attachments = [
        Attachment(encode(Pil.new("RGB", (30, 20), RED), "PNG"), "fine.png"),
        Attachment(b"%PDF-1.4 ...", "second.pdf"),
        Attachment(b"plain text", "third.txt"),
    ]
    with pytest.raises(NotAnImage, match=r"second\.pdf"):
        await normalise_all(attachments, accepted=ACCEPTED)


async def test_decoding_resizing_and_encoding_run_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: dict[str, set[int]] = {"load": set(), "resize": set(), "save": set()}

    def observed(owner: Any, method: str) -> None:
        original: Callable[..., Any] = getattr(owner, method)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            threads[method].add(threading.get_ident())
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, method, wrapper)

    data = encode(halves((400, 300), RED, BLUE), "JPEG")
    observed(ImageFile.ImageFile, "load")
    observed(Pil.Image, "resize")
    observed(Pil.Image, "save")
    await normalise(Attachment(data, "big.jpg"), accepted=ACCEPTED, max_pixels=300 * 225)
    assert all(threads.values()), threads
    assert threading.get_ident() not in set().union(*threads.values())
