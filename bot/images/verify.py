"""The model's own images, checked as an attachment is before they count as a result.

A model's answer is as untrusted as an upload: it may be cut short in transit, be a format no
model accepts back, or declare a size whose decoding would take gigabytes. The check never
changes the bytes: what the user downloads is exactly what the model made.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image as Pil

from bot.errors import DamagedImage
from bot.images.budget import MAX_SOURCE_PIXELS
from bot.images.formats import DECODE_ERRORS, PILLOW_FORMATS, pillow_reads, sniff
from bot.images.workers import LIGHT_BYTES, LIGHT_PIXELS, ImageWorkers, decodes_here
from bot.models import Image

logger = logging.getLogger(__name__)

TOO_MANY_PIXELS = (
    "The model's image declares more pixels than the bot can safely open, so it was not "
    "kept; please try again."
)
# HEIC and HEIF share brands: a declared one of the two is the better guess.
_HEIF_TYPES = frozenset({"image/heic", "image/heif"})


async def verify_output(
    image: Image,
    *,
    max_source_pixels: int = MAX_SOURCE_PIXELS,
    workers: ImageWorkers | None = None,
) -> Image:
    """The model's image typed by its bytes, once it decodes whole within the pixel budget.

    With workers, any image but a small one is decoded in a worker process; without, in a thread.
    """
    if workers is None or _light(image.data):
        return await asyncio.to_thread(_verify_bytes, image, max_source_pixels)
    mime = await workers.run(_verified_type, image.data, image.mime_type, max_source_pixels)
    return image if mime == image.mime_type else Image(image.data, mime)


def _verify_bytes(image: Image, max_source_pixels: int) -> Image:
    mime = _verified_type(image.data, image.mime_type, max_source_pixels)
    return image if mime == image.mime_type else Image(image.data, mime)


def _verified_type(data: bytes, declared: str, max_source_pixels: int) -> str:
    """The type the image is kept as, once its bytes decode whole; only the type goes back."""
    mime = sniff(data)
    formats = PILLOW_FORMATS.get(mime) if mime else None
    if mime is None or formats is None:
        raise DamagedImage()
    if pillow_reads(formats):
        with _judging():
            _decode_whole(data, formats, max_source_pixels)
    if mime == declared or {mime, declared} <= _HEIF_TYPES:
        return declared
    return mime


def _light(data: bytes) -> bool:
    """True when the image is small enough that a worker would cost more than decoding it here."""
    if len(data) > LIGHT_BYTES:
        return False
    formats = PILLOW_FORMATS.get(sniff(data) or "")
    if formats is None:
        return True  # refused at once
    if not decodes_here(formats):
        return False
    try:
        with Pil.open(io.BytesIO(data), formats=list(formats)) as source:
            width, height = source.size
    except (*DECODE_ERRORS, Pil.DecompressionBombError):
        return True  # refused at once, with the check's own words
    return width * height <= LIGHT_PIXELS


def _decode_whole(data: bytes, formats: tuple[str, ...], max_source_pixels: int) -> None:
    """Every pixel decoded (the declared size checked first), and a PNG's checksums too."""
    with Pil.open(io.BytesIO(data), formats=list(formats)) as source:
        width, height = source.size
        if width < 1 or height < 1:
            raise DamagedImage()
        if width * height > max_source_pixels:
            logger.warning("model image declares %dx%d pixels; refused", width, height)
            raise DamagedImage(TOO_MANY_PIXELS)
        source.load()
        png = source.format == "PNG"
    if png:
        # load() stops at the last pixel; a cut or corrupted chunk after it shows only here.
        with Pil.open(io.BytesIO(data), formats=["PNG"]) as again:
            again.verify()


@contextmanager
def _judging() -> Iterator[None]:
    """Pillow's failures on a broken or hostile image as the bot's own error."""
    try:
        yield
    except Pil.DecompressionBombError as exc:
        raise DamagedImage(TOO_MANY_PIXELS) from exc
    except DECODE_ERRORS as exc:
        raise DamagedImage() from exc
