"""The model's own images: kept byte for byte when whole, refused when damaged or a bomb."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image as Pil
from PIL import ImageFile

from bot.errors import DamagedImage
from bot.images import verify_output
from bot.images.verify import TOO_MANY_PIXELS
from bot.models import Image
from tests.support.images import BLUE, RED, encode, halved, halves, noise, png_declaring

DAMAGED = "The model's image arrived damaged; please try again."


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")],
)
async def test_a_whole_image_is_kept_as_it_came(fmt: str, mime: str) -> None:
    image = Image(encode(halves((96, 64), RED, BLUE), fmt), mime)

    assert await verify_output(image) is image


async def test_a_wrongly_declared_type_is_corrected_and_the_bytes_kept() -> None:
    data = encode(halves((96, 64), RED, BLUE), "GIF")

    checked = await verify_output(Image(data, "image/png"))

    assert (checked.data, checked.mime_type) == (data, "image/gif")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
async def test_an_image_cut_in_half_is_damaged(fmt: str) -> None:
    data = halved(encode(noise((128, 96)), fmt))

    with pytest.raises(DamagedImage) as caught:
        await verify_output(Image(data, "image/png"))

    assert caught.value.user_message == DAMAGED


@pytest.mark.parametrize("missing", [12, 20, 40])
async def test_a_png_cut_after_its_pixels_is_damaged(missing: int) -> None:
    data = encode(noise((64, 64)), "PNG")

    with pytest.raises(DamagedImage):
        await verify_output(Image(data[:-missing], "image/png"))


async def test_a_png_with_a_flipped_bit_is_damaged() -> None:
    data = bytearray(encode(noise((64, 64)), "PNG"))
    data[len(data) // 2] ^= 0x01

    with pytest.raises(DamagedImage):
        await verify_output(Image(bytes(data), "image/png"))


@pytest.mark.parametrize(
    "data",
    [b"", b"hello world", b"<svg xmlns='http://www.w3.org/2000/svg'></svg>"],
    ids=["empty", "text", "svg"],
)
async def test_what_is_not_a_picture_is_damaged(data: bytes) -> None:
    with pytest.raises(DamagedImage):
        await verify_output(Image(data, "image/png"))


@pytest.mark.parametrize("size", [(20000, 20000), (9000, 9000)], ids=["400MP", "81MP"])
async def test_a_declared_size_over_the_budget_is_refused_before_decoding(
    size: tuple[int, int],
) -> None:
    with pytest.raises(DamagedImage) as caught:
        await verify_output(Image(png_declaring(*size), "image/png"))

    assert caught.value.user_message == TOO_MANY_PIXELS


async def test_the_pixel_budget_is_a_keyword() -> None:
    image = Image(encode(halves((20, 10), RED, BLUE), "PNG"), "image/png")

    with pytest.raises(DamagedImage, match="more pixels"):
        await verify_output(image, max_source_pixels=199)
    assert await verify_output(image, max_source_pixels=200) is image


async def test_decoding_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: set[int] = set()
    original: Callable[..., Any] = ImageFile.ImageFile.load

    def load(*args: Any, **kwargs: Any) -> Any:
        threads.add(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    await verify_output(Image(encode(Pil.new("RGB", (32, 32), RED), "JPEG"), "image/jpeg"))

    assert threads and threading.get_ident() not in threads
