"""Attachments in, images a model accepts out: sniffed by content, checked, converted, downscaled.

Budgets, and why:
- MAX_IMAGE_BYTES (7,000,000): the upstream's limit per inline image.
- MAX_PIXELS (2048 x 2048, about 4.2 MP) and MAX_SIDE (4096): Gemini looks at images at roughly
  1-3 MP, so a 12-48 MP phone photo only costs upload time and tokens; 4 MP keeps the detail a
  4K-capable model can still use for an edit.
- MAX_SOURCE_PIXELS (80 MP): the most a source may declare before anything is decoded. Large
  enough for 48-61 MP cameras, below Pillow's own 89.5 MP warning, and a fully decoded RGBA image
  of that size (320 MB) is the most memory one attachment may take.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import os
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import ExifTags, ImageFile
from PIL import Image as Pil

from bot.errors import ImageTooLarge, NotAnImage, UnsupportedOption
from bot.image_types import LABELS, PILLOW_FORMATS, sniff
from bot.models import Attachment, Image
from bot.upstream import MAX_IMAGE_BYTES

__all__ = [
    "DAMAGED",
    "DRAFT_TOLERANCE",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MAX_SOURCE_PIXELS",
    "normalise",
    "normalise_all",
    "sniff",
]

logger = logging.getLogger(__name__)

MAX_PIXELS = 2048 * 2048
MAX_SIDE = 4096
MAX_SOURCE_PIXELS = 80_000_000
JPEG_QUALITY = 90
DRAFT_TOLERANCE = 0.8
DAMAGED = "the file is damaged or incomplete"

_PHOTO_FORMATS = frozenset({"JPEG", "MPO", "AVIF", "HEIF"})
_NEEDS_COLOUR_CONVERSION = frozenset({"CMYK", "YCbCr", "LAB", "HSV"})
_ENCODINGS = {"PNG": "image/png", "JPEG": "image/jpeg"}
_TRANSPOSE = {
    2: Pil.Transpose.FLIP_LEFT_RIGHT,
    3: Pil.Transpose.ROTATE_180,
    4: Pil.Transpose.FLIP_TOP_BOTTOM,
    5: Pil.Transpose.TRANSPOSE,
    6: Pil.Transpose.ROTATE_270,
    7: Pil.Transpose.TRANSVERSE,
    8: Pil.Transpose.ROTATE_90,
}
# Malformed input makes Pillow's plugins raise a range of exception types, not only OSError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error)


@dataclass(frozen=True)
class _Budget:
    accepted: frozenset[str]
    max_bytes: int
    max_pixels: int
    max_source_pixels: int


async def normalise(
    attachment: Attachment,
    *,
    accepted: frozenset[str],
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_source_pixels: int = MAX_SOURCE_PIXELS,
) -> Image:
    """The attachment as an image the model accepts: checked, converted and downscaled if needed."""
    budget = _Budget(accepted, max_bytes, max_pixels, max_source_pixels)
    return await asyncio.to_thread(_normalise_bytes, attachment.data, attachment.name, budget)


async def normalise_all(
    attachments: Sequence[Attachment],
    *,
    accepted: frozenset[str],
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_source_pixels: int = MAX_SOURCE_PIXELS,
) -> tuple[Image, ...]:
    """Every attachment normalised off the loop, order kept; the first failure in order raises."""
    # One core is left to the event loop: more workers than that finish no sooner on a busy
    # machine, they only make the loop wait longer for the GIL.
    workers = asyncio.Semaphore(max(1, (os.cpu_count() or 2) - 1))

    async def one(attachment: Attachment) -> Image:
        async with workers:
            return await normalise(
                attachment,
                accepted=accepted,
                max_bytes=max_bytes,
                max_pixels=max_pixels,
                max_source_pixels=max_source_pixels,
            )

    outcomes = await asyncio.gather(*map(one, attachments), return_exceptions=True)
    images: list[Image] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        images.append(outcome)
    return tuple(images)


def _normalise_bytes(data: bytes, name: str, budget: _Budget) -> Image:
    """The whole check-and-convert pipeline; CPU-bound, so it runs in a worker thread."""
    mime = sniff(data)
    if mime is None:
        raise NotAnImage(name)
    formats = PILLOW_FORMATS.get(mime)
    if formats is None or not _pillow_reads(formats):
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
            target = _target_size(original, budget.max_pixels)
            if target != original:
                source.draft(None, _draft_size(target))
            source.load()
        image = _convert(source, target, orientation, budget)
    logger.debug("normalised %s: %s %s -> %s %s", name, mime, original, image.mime_type, target)
    return image


def _pillow_reads(formats: tuple[str, ...]) -> bool:
    # The common formats need only Pillow's five core plugins, not an import of all of them.
    Pil.preinit()
    if any(name in Pil.OPEN for name in formats):
        return True
    Pil.init()
    return any(name in Pil.OPEN for name in formats)


def _undecodable(data: bytes, name: str, mime: str, budget: _Budget) -> Image:
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
    except _DECODE_ERRORS as exc:
        raise NotAnImage(name, DAMAGED) from exc


def _check_declared_size(source: Pil.Image, name: str, budget: _Budget) -> None:
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
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _target_size(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """The largest size with the same aspect ratio within the pixel budget and MAX_SIDE."""
    width, height = size
    scale = min(1.0, math.sqrt(max_pixels / (width * height)), MAX_SIDE / max(width, height))
    if scale >= 1.0:
        return size
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def _draft_size(target: tuple[int, int]) -> tuple[int, int]:
    """The smallest size a JPEG may decode to when it is to be reduced to target.

    Decoding at a 1/2, 1/4 or 1/8 DCT scale takes a fraction of the time and memory of a full
    decode plus a resampling pass; a scale within DRAFT_TOLERANCE of the target per side is
    kept as it is (a 12 MP phone photo decodes straight to 3 MP).
    """
    return math.ceil(target[0] * DRAFT_TOLERANCE), math.ceil(target[1] * DRAFT_TOLERANCE)


def _can_pass_through(
    source: ImageFile.ImageFile, data: bytes, mime: str, orientation: int, budget: _Budget
) -> bool:
    """True when the original bytes are already what the model should get."""
    return (
        mime in budget.accepted
        and len(data) <= budget.max_bytes
        and orientation == 1
        and source.mode not in _NEEDS_COLOUR_CONVERSION
        and _target_size(source.size, budget.max_pixels) == source.size
        and not (mime == "image/png" and data.rfind(b"IEND") == -1)
        # MPO is a JPEG with extra views appended that every JPEG reader skips.
        and (source.format == "MPO" or not getattr(source, "is_animated", False))
    )


def _convert(
    source: ImageFile.ImageFile, target: tuple[int, int], orientation: int, budget: _Budget
) -> Image:
    """The loaded first frame upright, in RGB(A)/L(A), within the budgets, encoded."""
    frame = _displayable(source)
    if frame.width > target[0] or frame.height > target[1]:
        frame = frame.resize(target, Pil.Resampling.LANCZOS, reducing_gap=3.0)
    if orientation in _TRANSPOSE:
        frame = frame.transpose(_TRANSPOSE[orientation])
    frame = _drop_opaque_alpha(frame)
    # A CMYK profile no longer describes the converted pixels.
    icc = None if source.mode in _NEEDS_COLOUR_CONVERSION else source.info.get("icc_profile")
    return _encode(frame, photo=source.format in _PHOTO_FORMATS, icc=icc, budget=budget)


def _displayable(source: Pil.Image) -> Pil.Image:
    """The frame in a mode every encoder and resampler handles, alpha kept."""
    mode = source.mode
    if "transparency" in source.info and mode in ("1", "L", "P", "RGB"):
        return source.convert("LA" if mode in ("1", "L") else "RGBA")
    if mode in ("RGB", "RGBA", "L", "LA"):
        return source
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N"):
        # Scale 16-bit samples down; a plain conversion would clip everything above 255.
        return source.convert("I").point(lambda value: value / 256).convert("L")
    if mode in ("1", "F"):
        return source.convert("L")
    if mode in ("PA", "La"):
        return source.convert("RGBA" if mode == "PA" else "LA")
    return source.convert("RGBA" if "A" in mode or "a" in mode else "RGB")


def _drop_opaque_alpha(frame: Pil.Image) -> Pil.Image:
    """An alpha channel that hides nothing is dropped, so the frame may be sent as a photo."""
    if frame.mode in ("RGBA", "LA") and frame.getchannel("A").getextrema() == (255, 255):
        return frame.convert(frame.mode[:-1])
    return frame


def _encode(frame: Pil.Image, *, photo: bool, icc: bytes | None, budget: _Budget) -> Image:
    """Photos as JPEG, graphics as PNG (JPEG if that is too big), shrunk until within max_bytes."""
    encodings = _encodings_for(frame, photo=photo, accepted=budget.accepted)
    while True:
        smallest = 0
        for encoding in encodings:
            data = _save(frame, encoding, icc)
            if len(data) <= budget.max_bytes:
                return Image(data, _ENCODINGS[encoding])
            smallest = min(smallest or len(data), len(data))
        # Encoded size grows about linearly with the pixel count.
        scale = min(0.9, max(0.5, math.sqrt(budget.max_bytes / smallest) * 0.95))
        smaller = (max(1, int(frame.width * scale)), max(1, int(frame.height * scale)))
        frame = frame.resize(smaller, Pil.Resampling.LANCZOS)


def _encodings_for(frame: Pil.Image, *, photo: bool, accepted: frozenset[str]) -> list[str]:
    alpha = frame.mode in ("RGBA", "LA")
    preferred = ["JPEG", "PNG"] if photo and not alpha else ["PNG", "JPEG"]
    usable = [encoding for encoding in preferred if _ENCODINGS[encoding] in accepted]
    if not usable:
        raise UnsupportedOption("This model accepts neither PNG nor JPEG images.")
    # Keeping alpha beats a smaller file; a photo never needs the bigger PNG.
    return usable[:1] if alpha or photo else usable


def _save(frame: Pil.Image, encoding: str, icc: bytes | None) -> bytes:
    options: dict[str, object] = {"icc_profile": icc} if icc else {}
    if encoding == "JPEG":
        options["quality"] = JPEG_QUALITY
        if frame.mode not in ("RGB", "L"):
            frame = frame.convert("RGB")
    try:
        descriptor = os.memfd_create("encoded-image")
    except (AttributeError, OSError):  # no memfd on this platform or in this sandbox
        buffer = io.BytesIO()
        frame.save(buffer, encoding, **options)
        return buffer.getvalue()
    # Pillow encodes into a real file descriptor without holding the GIL, so the event loop
    # and other workers keep running; an in-memory one never touches the disk.
    with open(descriptor, "w+b") as file:
        frame.save(file, encoding, **options)
        file.seek(0)
        return file.read()
