"""Previews of results over an upload limit: within it, faithful, and said so in the footer."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image as Pil
from PIL import ImageChops

from bot.errors import ImageTooLarge
from bot.images import ImageWorkers, Preview, preview
from bot.images.fit import psnr
from bot.images.preview import SAFETY
from bot.models import Image
from tests.support.images import close_to, decode, noise

MiB = 1024 * 1024
DISCORD = 10 * MiB


def _png(frame: Pil.Image) -> Image:
    buffer = io.BytesIO()
    frame.save(buffer, "PNG", compress_level=1)  # noise does not compress; speed matters more
    return Image(buffer.getvalue(), "image/png")


def _photo_like(side: int) -> Pil.Image:
    """Smooth colour fields under a fine grain: what a model's detailed render compresses like."""
    base = noise((side // 32, side // 32)).resize((side, side), Pil.Resampling.BICUBIC)
    grain = Pil.frombytes("L", (side, side), os.urandom(side * side)).point(lambda v: v // 16)
    return Pil.merge("RGB", [ImageChops.add(channel, grain) for channel in base.split()])


def _within(made: Preview, limit: int) -> None:
    assert len(made.image.data) <= limit - int(limit * SAFETY)
    assert decode(made.image).size == made.size


async def test_an_image_within_the_limit_needs_no_preview() -> None:
    small = _png(_photo_like(256))
    assert await preview(small, limit_bytes=len(small.data)) is None
    assert await preview(small, limit_bytes=DISCORD) is None


async def test_a_large_render_keeps_its_size_and_says_what_it_is() -> None:
    original = _png(_photo_like(2048))
    limit = 2 * MiB
    assert len(original.data) > limit
    made = await preview(original, limit_bytes=limit, platform="Discord")
    assert made is not None
    _within(made, limit)
    assert made.size == made.original_size == (2048, 2048)
    assert not made.downscaled
    assert made.image.mime_type in {"image/jpeg", "image/webp"}
    assert made.original_bytes == len(original.data)
    assert made.original_mime == "image/png"
    assert psnr(decode(original), made.image.data) > 33  # faithful, not merely small
    kind = "JPEG" if made.image.mime_type == "image/jpeg" else "WebP"
    size_mb = f"{len(made.image.data) / 1_000_000:.1f} MB"
    assert made.footer == (
        f"Preview: {kind} 2048×2048, {size_mb}. The original PNG (2048×2048, "
        f"{len(original.data) / 1_000_000:.1f} MB) is over Discord's 2 MiB upload limit."
    )


async def test_without_a_platform_the_footer_names_the_limit_alone() -> None:
    original = _png(_photo_like(1024))
    made = await preview(original, limit_bytes=500_000, formats=frozenset({"image/jpeg"}))
    assert made is not None
    assert made.image.mime_type == "image/jpeg"
    assert made.footer.endswith("is over the 500 KB upload limit.")


async def test_pathological_4k_noise_still_fits_discord() -> None:
    original = _png(noise((4096, 4096)))
    assert len(original.data) > 40_000_000
    made = await preview(original, limit_bytes=DISCORD, platform="Discord")
    assert made is not None
    _within(made, DISCORD)
    assert made.original_size == (4096, 4096)


async def test_when_no_quality_fits_the_preview_is_made_smaller_in_proportion() -> None:
    original = _png(noise((1200, 800)))
    made = await preview(original, limit_bytes=150_000)
    assert made is not None
    _within(made, 150_000)
    assert made.downscaled
    width, height = made.size
    assert width < 1200 and abs(width / height - 1.5) < 0.01
    assert "1200×800" in made.footer and f"{width}×{height}" in made.footer


async def test_transparency_becomes_white_in_a_jpeg() -> None:
    frame = Pil.new("RGBA", (1024, 1024), (0, 0, 0, 0))
    frame.paste(noise((512, 512)).convert("RGBA"), (256, 256))
    original = _png(frame)
    made = await preview(
        original, limit_bytes=len(original.data) // 2, formats=frozenset({"image/jpeg"})
    )
    assert made is not None
    shown = decode(made.image).convert("RGB")
    assert close_to(shown.getpixel((10, 10)), (255, 255, 255))
    assert close_to(shown.getpixel((1000, 1000)), (255, 255, 255))


async def test_a_limit_no_preview_can_meet_is_refused_plainly() -> None:
    original = _png(_photo_like(256))
    with pytest.raises(ImageTooLarge, match="no preview"):
        await preview(original, limit_bytes=40)


async def test_through_the_worker_pool_as_in_the_service() -> None:
    original = _png(_photo_like(2048))
    workers = ImageWorkers(1)
    try:
        made = await preview(original, limit_bytes=2 * MiB, workers=workers)
    finally:
        await workers.aclose()
    assert made is not None
    assert workers.jobs == 1
    _within(made, 2 * MiB)
    assert made.size == (2048, 2048)
