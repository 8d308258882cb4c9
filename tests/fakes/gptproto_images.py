"""Images the gptproto fake answers with: cheap to make, sized by ratio, tagged with a serial."""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import zlib
from functools import lru_cache

from PIL import Image as PILImage

from bot.upstream import RATIO_SIZES

BLOCK = 8  # one bit per 8x8 block: aligned with JPEG's DCT blocks, so it survives JPEG
SERIAL_BITS = 24
MARKER = 0xB4A7  # second block row: tells the fake's images from anyone else's
MARKER_BITS = 16
_BLACK = b"\x00\x00\x00"
_WHITE = b"\xff\xff\xff"


def ratio_size(ratio: str | None) -> tuple[int, int]:
    """Output size for an aspect ratio: the model's table, else about one megapixel."""
    if ratio is None:
        return RATIO_SIZES["1:1"]
    if ratio in RATIO_SIZES:
        return RATIO_SIZES[ratio]
    try:
        width_part, height_part = (float(value) for value in ratio.split(":"))
    except ValueError:
        return RATIO_SIZES["1:1"]
    scale = (1024 * 1024 / (width_part * height_part)) ** 0.5
    return (
        max(256, round(width_part * scale / 16) * 16),
        max(16, round(height_part * scale / 16) * 16),
    )


SIZE_SCALE = {"512": 0.5, "1K": 1.0, "2K": 2.0, "4K": 4.0}


def output_size(ratio: str | None, image_size: str | None = None) -> tuple[int, int]:
    """Pixels for a ratio at an output size: the 1K table scaled (2K doubles, 4K quadruples)."""
    width, height = ratio_size(ratio)
    scale = SIZE_SCALE.get(image_size or "1K", 1.0)
    # At least wide enough for the serial's blocks, so every image stays identifiable.
    return max(BLOCK * SERIAL_BITS, round(width * scale)), max(2 * BLOCK, round(height * scale))


def fill_colour(serial: int, variant: int = 0) -> bytes:
    """A background colour that changes from one serial to the next (16 of them, cycling);
    `variant` tells apart the images of one answer (candidates, drafts)."""
    step = serial % 16
    shift = variant * 47
    return bytes(
        (
            (step * 73 + 40 + shift) % 256,
            (step * 151 + 90 + shift) % 256,
            (step * 199 + 160 + shift) % 256,
        )
    )


def make_image(
    serial: int,
    size: tuple[int, int],
    *,
    mime: str = "image/png",
    padding: int = 0,
    variant: int = 0,
    noise: int = 0,
) -> bytes:
    """An image of `size` whose pixels carry `serial`; `padding` adds incompressible bytes."""
    return encoded_image(serial, size, mime=mime, padding=padding, variant=variant, noise=noise)[0]


def encoded_image(
    serial: int,
    size: tuple[int, int],
    *,
    mime: str = "image/png",
    padding: int = 0,
    variant: int = 0,
    noise: int = 0,
) -> tuple[bytes, str]:
    """make_image's bytes and their base64, the padded part of which is encoded only once.

    noise: about this many bytes of random pixels (a PNG band under the serial's rows), so a
    4K answer weighs what a real one does (15-25 MB) and a preview must really re-encode it.
    """
    width, height = size
    rows = _pixel_rows(serial, width, variant)
    if mime == "image/jpeg":
        pixels = rows[0] * BLOCK + rows[1] * BLOCK + rows[2] * (height - 2 * BLOCK)
        buffer = io.BytesIO()
        PILImage.frombytes("RGB", size, pixels).save(buffer, "JPEG", quality=92)
        return buffer.getvalue(), base64.b64encode(buffer.getvalue()).decode("ascii")
    head, head_b64 = _png_head(width, height, padding)
    tail = _chunk(b"IDAT", _zlib_stream(rows, height, noise)) + _chunk(b"IEND", b"")
    return head + tail, head_b64 + base64.b64encode(tail).decode("ascii")


@lru_cache(maxsize=32)
def _png_head(width: int, height: int, padding: int) -> tuple[bytes, str]:
    # Signature, IHDR and padding; a length divisible by 3 lets its base64 be reused as is.
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
    if padding:
        # A private ancillary chunk: decoders skip it, and it makes bodies realistically large.
        head += _chunk(b"fkPd", os.urandom(padding - padding % 3))
    assert len(head) % 3 == 0
    return head, base64.b64encode(head).decode("ascii")


def image_serial(data: bytes) -> int | None:
    """The serial a fake-made image carries (even after re-encoding); None for other images."""
    try:
        with PILImage.open(io.BytesIO(data)) as opened:
            grey = opened.convert("L")
    except Exception:
        return None
    if grey.width < BLOCK * SERIAL_BITS or grey.height < 2 * BLOCK:
        return None
    centre = BLOCK // 2

    def bits(row: int, count: int) -> int:
        value = 0
        for index in range(count):
            pixel = grey.getpixel((index * BLOCK + centre, row * BLOCK + centre))
            value = (value << 1) | (1 if isinstance(pixel, int) and pixel >= 128 else 0)
        return value

    if bits(1, MARKER_BITS) != MARKER:
        return None
    return bits(0, SERIAL_BITS)


def _pixel_rows(serial: int, width: int, variant: int = 0) -> tuple[bytes, bytes, bytes]:
    fill = fill_colour(serial, variant)
    serial_row = _bit_row(serial, SERIAL_BITS, fill, width)
    marker_row = _bit_row(MARKER, MARKER_BITS, fill, width)
    return serial_row, marker_row, fill * width


def _bit_row(value: int, count: int, fill: bytes, width: int) -> bytes:
    bits = [(value >> (count - 1 - index)) & 1 for index in range(count)]
    blocks = b"".join((_WHITE if bit else _BLACK) * BLOCK for bit in bits)
    return blocks + fill * (width - BLOCK * count)


def _zlib_stream(rows: tuple[bytes, bytes, bytes], height: int, noise: int = 0) -> bytes:
    # The tagged top rows are compressed per image; the plain rest, identical for every
    # image of a colour and size, is compressed once and spliced in, keeping images cheap.
    head = (b"\x00" + rows[0]) * BLOCK + (b"\x00" + rows[1]) * BLOCK
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    head_deflate = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    adler = zlib.adler32(head)
    row_bytes = len(rows[2]) + 1
    noisy = min(height - 2 * BLOCK, noise // row_bytes)
    if noisy:
        # Random rows, stored rather than compressed: they would not shrink, and storing is fast.
        band = b"".join(b"\x00" + os.urandom(len(rows[2])) for _ in range(noisy))
        stored = zlib.compressobj(0, zlib.DEFLATED, -15)
        head_deflate += stored.compress(band) + stored.flush(zlib.Z_FULL_FLUSH)
        adler = _adler32_combine(adler, zlib.adler32(band), len(band))
    tail_deflate, tail_adler, tail_length = _plain_rows(rows[2], height - 2 * BLOCK - noisy)
    adler = _adler32_combine(adler, tail_adler, tail_length)
    return b"\x78\x01" + head_deflate + tail_deflate + struct.pack(">I", adler)


@lru_cache(maxsize=256)
def _plain_rows(row: bytes, count: int) -> tuple[bytes, int, int]:
    raw = (b"\x00" + row) * count
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
    return compressor.compress(raw) + compressor.flush(), zlib.adler32(raw), len(raw)


def _adler32_combine(first: int, second: int, second_length: int) -> int:
    # zlib's adler32_combine, which Python's zlib module does not expose.
    base = 65521
    remainder = second_length % base
    sum1 = first & 0xFFFF
    sum2 = (remainder * sum1) % base
    sum1 = (sum1 + (second & 0xFFFF) + base - 1) % base
    sum2 = (sum2 + ((first >> 16) & 0xFFFF) + ((second >> 16) & 0xFFFF) + base - remainder) % base
    return sum1 | (sum2 << 16)


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def stand_in(index: int, data: str) -> tuple[str, str, str]:
    """(the placeholder as it reads inside JSON, the base64 it stands for, the placeholder)."""
    placeholder = f"\x00image{index}\x00"
    return json.dumps(placeholder)[1:-1], data, placeholder


def signature() -> str:
    # Random bytes in standard base64: '+', '/' and '=' make any re-encoding visible.
    return base64.b64encode(os.urandom(45) + b"\xfb\xff").decode("ascii")
