"""What an image file is, decided from its bytes (magic numbers), never from its name."""

from __future__ import annotations

import struct

from PIL import Image as Pil

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"II+\x00", "image/tiff"),
    (b"MM\x00+", "image/tiff"),
    (b"8BPS", "image/vnd.adobe.photoshop"),
    (b"qoif", "image/qoi"),
    (b"DDS ", "image/vnd-ms.dds"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "image/jp2"),
    (b"\xff\x4f\xff\x51", "image/jp2"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "image/jxl"),
    (b"\xff\x0a", "image/jxl"),
)
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_HEIF_BRANDS = frozenset({b"mif1", b"mif2", b"msf1", b"heif"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_FTYP_BRANDS = (
    (_AVIF_BRANDS, "image/avif"),
    (_HEIC_BRANDS, "image/heic"),
    (_HEIF_BRANDS, "image/heif"),
)

# Each sniffed type is opened only by its own Pillow plugins: bytes never reach a decoder
# (or a delegate such as Ghostscript) that the content did not ask for.
PILLOW_FORMATS: dict[str, tuple[str, ...]] = {
    "image/png": ("PNG",),
    "image/jpeg": ("JPEG", "MPO"),
    "image/gif": ("GIF",),
    "image/webp": ("WEBP",),
    "image/bmp": ("BMP",),
    "image/tiff": ("TIFF",),
    "image/x-icon": ("ICO", "CUR"),
    "image/vnd.adobe.photoshop": ("PSD",),
    "image/qoi": ("QOI",),
    "image/vnd-ms.dds": ("DDS",),
    "image/jp2": ("JPEG2000",),
    "image/avif": ("AVIF",),
    "image/heic": ("HEIF",),
    "image/heif": ("HEIF",),
}
# Malformed input makes Pillow's plugins raise a range of exception types, not only OSError.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error)
LABELS = {
    "image/heic": "HEIC",
    "image/heif": "HEIF",
    "image/avif": "AVIF",
    "image/jxl": "JPEG XL",
    "image/svg+xml": "SVG",
}


def sniff(data: bytes) -> str | None:
    """The image mime type the bytes themselves declare, or None when they are not an image."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:2] == b"BM" and len(data) >= 18 and _bmp_header_size(data) in _BMP_HEADER_SIZES:
        return "image/bmp"
    if _looks_like_icon(data):
        return "image/x-icon"
    if data[4:8] == b"ftyp":
        return _sniff_ftyp(data)
    return _sniff_svg(data)


def _bmp_header_size(data: bytes) -> int:
    size: int = struct.unpack_from("<I", data, 14)[0]
    return size


def _looks_like_icon(data: bytes) -> bool:
    """ICO/CUR: a 4-byte type, then at least one directory entry whose reserved byte is zero."""
    return (
        data[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00")
        and len(data) >= 22
        and data[4] > 0
        and data[9] == 0
    )


def _sniff_ftyp(data: bytes) -> str | None:
    """HEIC, HEIF or AVIF from an ISO media 'ftyp' box: the major brand, then compatible ones."""
    box_end = min(int.from_bytes(data[:4], "big"), len(data), 256)
    brands = [data[8:12], *(data[i : i + 4] for i in range(16, box_end - 3, 4))]
    for brand_set, mime in _FTYP_BRANDS[:2]:
        if brands[0] in brand_set:
            return mime
    for brand_set, mime in _FTYP_BRANDS:
        if any(brand in brand_set for brand in brands):
            return mime
    return None


def _sniff_svg(data: bytes) -> str | None:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "image/svg+xml"
    return None


def pillow_reads(formats: tuple[str, ...]) -> bool:
    """True when one of these Pillow plugins is installed here."""
    # The common formats need only Pillow's five core plugins, not an import of all of them.
    Pil.preinit()
    if any(name in Pil.OPEN for name in formats):
        return True
    Pil.init()
    return any(name in Pil.OPEN for name in formats)
