"""Real image files made with Pillow for the image tests; nothing is read from disk."""

from __future__ import annotations

import io
import os
import struct
import zlib
from typing import Any

from PIL import Image as Pil

from bot.models import Image
from bot.upstream import capabilities

ACCEPTED = capabilities("gemini-2.5-flash-image").mime_types
HEIF_ACCEPTED = capabilities("gemini-3-pro-image-preview").mime_types
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def encode(image: Pil.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def decode(image: Image) -> Pil.Image:
    opened = Pil.open(io.BytesIO(image.data))
    opened.load()
    return opened


def halves(size: tuple[int, int], left: tuple[int, ...], right: tuple[int, ...]) -> Pil.Image:
    """An image whose left half is one colour and right half another."""
    mode = "RGBA" if len(left) == 4 else "RGB"
    image = Pil.new(mode, size, left)
    image.paste(Pil.new(mode, (size[0] - size[0] // 2, size[1]), right), (size[0] // 2, 0))
    return image


def noise(size: tuple[int, int]) -> Pil.Image:
    return Pil.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))


def close_to(actual: Any, expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def halved(data: bytes) -> bytes:
    return data[: len(data) // 2]


def png_declaring(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose IHDR claims another size, CRC fixed: a bomb costing 70 bytes."""
    data = bytearray(encode(Pil.new("RGB", (1, 1), RED), "PNG"))
    ihdr_start = 8 + 4  # signature, then the chunk length
    data[ihdr_start + 4 : ihdr_start + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr_start : ihdr_start + 17]))
    data[ihdr_start + 17 : ihdr_start + 21] = struct.pack(">I", crc)
    return bytes(data)


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    """The opening box of an ISO media file (HEIC, HEIF, AVIF), followed by filler."""
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00" * 64
