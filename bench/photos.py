"""Camera-like JPEG photos of a given size in bytes, each one with its own pixels.

Like a phone's, they are stored sideways with an EXIF Orientation tag (6: turn 90 degrees
clockwise to show), so the bot has to turn each one upright.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image, ImageChops, ImageDraw

QUALITIES = (95, 92, 90, 88, 85, 80, 75, 70, 60, 50)
ORIENTATION_TAG = 0x0112
PORTRAIT_HELD_UPRIGHT = 6


def _texture(side: tuple[int, int], fine: float) -> Image.Image:
    """Soft colour blobs plus sensor-like grain: compresses about as a phone photo does."""
    width, height = side
    blobs = [
        Image.effect_noise((max(1, width // 4), max(1, height // 4)), 80).resize(
            side, Image.Resampling.BICUBIC
        )
        for _ in range(3)
    ]
    grain = Image.effect_noise(side, fine).convert("RGB")
    return ImageChops.add(Image.merge("RGB", blobs), grain, scale=1.0, offset=-128)


def _encode(image: Image.Image, quality: int, exif: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, exif=exif)
    return buffer.getvalue()


def _exif(orientation: int) -> bytes:
    tags = Image.Exif()
    tags[ORIENTATION_TAG] = orientation
    return tags.tobytes()


def _variant(texture: Image.Image, index: int, quality: int, exif: bytes) -> bytes:
    marked = texture.copy()
    draw = ImageDraw.Draw(marked)
    x = (index * 97) % max(1, marked.width - 64)
    colour = ((index * 53) % 256, (index * 101) % 256, (index * 151) % 256)
    draw.rectangle((x, 8, x + 63, 71), fill=colour)
    return _encode(marked, quality, exif)


def _quality_for(texture: Image.Image, target: int) -> int:
    """The highest JPEG quality whose file is at most `target` bytes (or the lowest tried)."""
    for quality in QUALITIES:
        if len(_encode(texture, quality)) <= target:
            return quality
    return QUALITIES[-1]


async def photos(
    count: int,
    *,
    side: tuple[int, int],
    target_bytes: int,
    orientation: int = PORTRAIT_HELD_UPRIGHT,
) -> list[bytes]:
    """`count` distinct JPEGs of about target_bytes each (made in worker threads)."""
    texture = await asyncio.to_thread(_texture, side, 8.0)
    quality = await asyncio.to_thread(_quality_for, texture, target_bytes)
    return list(
        await asyncio.gather(
            *(
                asyncio.to_thread(_variant, texture, index, quality, _exif(orientation))
                for index in range(count)
            )
        )
    )
