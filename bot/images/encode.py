"""Pixels to bytes: a decoded frame made upright, displayable and encoded within its budget."""

from __future__ import annotations

import io
import math
import os

from PIL import Image as Pil
from PIL import ImageFile

from bot.errors import UnsupportedOption
from bot.images.budget import Budget
from bot.models import Image

JPEG_QUALITY = 90
NEEDS_COLOUR_CONVERSION = frozenset({"CMYK", "YCbCr", "LAB", "HSV"})
_PHOTO_FORMATS = frozenset({"JPEG", "MPO", "AVIF", "HEIF"})
_ENCODINGS = {"PNG": "image/png", "JPEG": "image/jpeg"}
TRANSPOSE = {
    2: Pil.Transpose.FLIP_LEFT_RIGHT,
    3: Pil.Transpose.ROTATE_180,
    4: Pil.Transpose.FLIP_TOP_BOTTOM,
    5: Pil.Transpose.TRANSPOSE,
    6: Pil.Transpose.ROTATE_270,
    7: Pil.Transpose.TRANSVERSE,
    8: Pil.Transpose.ROTATE_90,
}


def convert(
    source: ImageFile.ImageFile, target: tuple[int, int], orientation: int, budget: Budget
) -> Image:
    """The loaded first frame upright, in RGB(A)/L(A), within the budgets, encoded."""
    frame = displayable(source)
    if frame.width > target[0] or frame.height > target[1]:
        frame = frame.resize(target, Pil.Resampling.LANCZOS, reducing_gap=3.0)
    if orientation in TRANSPOSE:
        frame = frame.transpose(TRANSPOSE[orientation])
    frame = _drop_opaque_alpha(frame)
    # A CMYK profile no longer describes the converted pixels.
    icc = None if source.mode in NEEDS_COLOUR_CONVERSION else source.info.get("icc_profile")
    return _encode(frame, photo=source.format in _PHOTO_FORMATS, icc=icc, budget=budget)


def displayable(source: Pil.Image) -> Pil.Image:
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


def _encode(frame: Pil.Image, *, photo: bool, icc: bytes | None, budget: Budget) -> Image:
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
    return save(frame, encoding, **options)


def save(frame: Pil.Image, encoding: str, **options: object) -> bytes:
    """The frame encoded by Pillow's plugin for encoding, with its options, as bytes."""
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
