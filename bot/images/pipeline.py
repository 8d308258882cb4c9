"""Attachments in, images a model accepts out: sniffed by content, checked, converted, downscaled.

The budgets, and why each has its value, are in bot.images.budget.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext

from PIL import ExifTags, ImageFile
from PIL import Image as Pil

from bot.errors import ImageTooLarge, NotAnImage, UnsupportedOption
from bot.images.budget import (
    DRAFT_TOLERANCE,
    MAX_IMAGE_BYTES,
    MAX_PIXELS,
    MAX_SOURCE_PIXELS,
    Budget,
    target_size,
)
from bot.images.encode import NEEDS_COLOUR_CONVERSION, TRANSPOSE, convert
from bot.images.formats import DECODE_ERRORS, LABELS, PILLOW_FORMATS, pillow_reads, sniff
from bot.images.workers import LIGHT_BYTES, LIGHT_PIXELS, ImageWorkers, decodes_here
from bot.models import Attachment, Image

logger = logging.getLogger(__name__)

DAMAGED = "the file is damaged or incomplete"


async def normalise(
    attachment: Attachment,
    *,
    accepted: frozenset[str],
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_source_pixels: int = MAX_SOURCE_PIXELS,
    workers: ImageWorkers | None = None,
) -> Image:
    """The attachment as an image the model accepts: checked, converted and downscaled if needed.

    With workers, anything but a small image that passes as it is goes to a worker process;
    without, everything runs in a thread.
    """
    budget = Budget(accepted, max_bytes, max_pixels, max_source_pixels)
    data, name = attachment.data, attachment.name
    if workers is None or _light(data, budget):
        return await asyncio.to_thread(_normalise_bytes, data, name, budget)
    outcome = await workers.run(_normalise_in_worker, data, name, budget)
    return Image(data, outcome) if isinstance(outcome, str) else outcome


async def normalise_all(
    attachments: Sequence[Attachment],
    *,
    accepted: frozenset[str],
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_source_pixels: int = MAX_SOURCE_PIXELS,
    workers: ImageWorkers | None = None,
) -> tuple[Image, ...]:
    """Every attachment normalised off the loop, order kept; the first failure in order raises."""
    # One core is left to the event loop: more threads than that finish no sooner on a busy
    # machine, they only make the loop wait longer for the GIL. Workers queue on their own.
    threads = asyncio.Semaphore(max(1, (os.cpu_count() or 2) - 1))

    async def one(attachment: Attachment) -> Image:
        async with threads if workers is None else nullcontext():
            return await normalise(
                attachment,
                accepted=accepted,
                max_bytes=max_bytes,
                max_pixels=max_pixels,
                max_source_pixels=max_source_pixels,
                workers=workers,
            )

    outcomes = await asyncio.gather(*map(one, attachments), return_exceptions=True)
    images: list[Image] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        images.append(outcome)
    return tuple(images)


def _light(data: bytes, budget: Budget) -> bool:
    """True when finishing here costs less than a worker: a quick refusal, or small and as is.

    Only headers are read (a fraction of a millisecond); the verdict only decides where the
    pipeline runs, never what it does.
    """
    mime = sniff(data)
    formats = PILLOW_FORMATS.get(mime or "")
    if mime is None or formats is None:
        return True  # refused, or passed on without being decoded
    if len(data) > LIGHT_BYTES or not decodes_here(formats):
        return False
    try:
        with Pil.open(io.BytesIO(data), formats=list(formats)) as source:
            width, height = source.size
            if width < 1 or height < 1 or width * height > budget.max_source_pixels:
                return True  # refused before anything is decoded
            if width * height > LIGHT_PIXELS:
                return False
            return _can_pass_through(source, data, mime, _header_orientation(source), budget)
    except (*DECODE_ERRORS, Pil.DecompressionBombError):
        return True  # refused at once, with the pipeline's own words


def _header_orientation(source: ImageFile.ImageFile) -> int:
    # Pillow decodes a whole PNG to look for an eXIf chunk after the pixels; one before them
    # is in the header. A small PNG rotated only by a late chunk is then rotated in a thread.
    if source.format == "PNG" and "exif" not in source.info:
        return 1
    return _orientation(source)


def _normalise_in_worker(data: bytes, name: str, budget: Budget) -> Image | str:
    """_normalise_bytes in a worker process; bytes that pass as they are stay where they are."""
    image = _normalise_bytes(data, name, budget)
    return image.mime_type if image.data is data else image


def _normalise_bytes(data: bytes, name: str, budget: Budget) -> Image:
    """The whole check-and-convert pipeline; CPU-bound, so it runs in a thread or a worker."""
    mime = sniff(data)
    if mime is None:
        raise NotAnImage(name)
    formats = PILLOW_FORMATS.get(mime)
    if formats is None or not pillow_reads(formats):
        return _undecodable(data, name, mime, budget)
    with _reading(name):
        source = Pil.open(io.BytesIO(data), formats=list(formats))
    with source:
        _check_declared_size(source, name, budget)
        with _reading(name):
            orientation = _orientation(source)
            if _can_pass_through(source, data, mime, orientation, budget):
                source.load()
                return Image(data, mime)
            original = source.size
            target = target_size(original, budget.max_pixels)
            if target != original:
                source.draft(None, _draft_size(target))
            source.load()
        image = convert(source, target, orientation, budget)
    logger.debug("normalised %s: %s %s -> %s %s", name, mime, original, image.mime_type, target)
    return image


def _undecodable(data: bytes, name: str, mime: str, budget: Budget) -> Image:
    """An image type Pillow cannot read here: passed through when the model takes it as it is."""
    label = LABELS.get(mime, mime)
    if mime in budget.accepted:
        if len(data) > budget.max_bytes:
            raise ImageTooLarge(
                name,
                f"{label} pictures over {budget.max_bytes:,} bytes cannot be shrunk here; "
                "please send a JPEG or PNG",
            )
        return Image(data, mime)
    raise UnsupportedOption(
        f"'{name}' is in {label} format, which this model does not take and the bot cannot "
        "convert. Please send it as a JPEG or PNG."
    )


@contextmanager
def _reading(name: str) -> Iterator[None]:
    """Pillow's failures on hostile or broken input as the bot's own errors."""
    try:
        yield
    except Pil.DecompressionBombError as exc:
        raise ImageTooLarge(name, "it declares more pixels than is safe to open") from exc
    except DECODE_ERRORS as exc:
        raise NotAnImage(name, DAMAGED) from exc


def _check_declared_size(source: Pil.Image, name: str, budget: Budget) -> None:
    width, height = source.size
    if width < 1 or height < 1:
        raise NotAnImage(name, DAMAGED)
    if width * height > budget.max_source_pixels:
        raise ImageTooLarge(
            name,
            f"{width}x{height} pixels; the most I can open is "
            f"{budget.max_source_pixels / 1_000_000:g} megapixels",
        )


def _orientation(source: Pil.Image) -> int:
    value = source.getexif().get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) and value in TRANSPOSE else 1


def _draft_size(target: tuple[int, int]) -> tuple[int, int]:
    """The smallest size a JPEG may decode to when it is to be reduced to target.

    Decoding at a 1/2, 1/4 or 1/8 DCT scale takes a fraction of the time and memory of a full
    decode plus a resampling pass; a scale within DRAFT_TOLERANCE of the target per side is
    kept as it is (a 12 MP phone photo decodes straight to 3 MP).
    """
    return math.ceil(target[0] * DRAFT_TOLERANCE), math.ceil(target[1] * DRAFT_TOLERANCE)


def _can_pass_through(
    source: ImageFile.ImageFile, data: bytes, mime: str, orientation: int, budget: Budget
) -> bool:
    """True when the original bytes are already what the model should get."""
    return (
        mime in budget.accepted
        and len(data) <= budget.max_bytes
        and orientation == 1
        and source.mode not in NEEDS_COLOUR_CONVERSION
        and target_size(source.size, budget.max_pixels) == source.size
        and not (mime == "image/png" and data.rfind(b"IEND") == -1)
        # MPO is a JPEG with extra views appended that every JPEG reader skips.
        and (source.format == "MPO" or not getattr(source, "is_animated", False))
    )
