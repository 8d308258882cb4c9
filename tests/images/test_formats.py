"""bot.image_types.sniff: the type decided from the bytes of real files, never a name."""

from __future__ import annotations

import pytest
from PIL import Image as Pil

from bot.images import sniff
from tests.support.images import RED, encode, ftyp


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("PNG", "image/png"),
        ("JPEG", "image/jpeg"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
        ("ICO", "image/x-icon"),
        ("QOI", "image/qoi"),
        ("AVIF", "image/avif"),
        ("JPEG2000", "image/jp2"),
    ],
)
def test_sniff_decides_the_type_from_real_files(fmt: str, mime: str) -> None:
    assert sniff(encode(Pil.new("RGB", (16, 16), RED), fmt)) == mime


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (ftyp(b"heic", b"mif1", b"heic"), "image/heic"),
        (ftyp(b"mif1", b"mif1", b"heic"), "image/heic"),
        (ftyp(b"mif1", b"mif1", b"miaf"), "image/heif"),
        (ftyp(b"avif", b"mif1", b"miaf"), "image/avif"),
        (ftyp(b"isom", b"iso2", b"mp41"), None),  # an MP4 video
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", None),
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", None),
        (b"BM is how this text starts", None),
        (b"just some text", None),
        (b"", None),
    ],
)
def test_sniff_reads_brands_and_refuses_non_images(data: bytes, mime: str | None) -> None:
    assert sniff(data) == mime
