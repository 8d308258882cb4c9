"""A faithful stand-in for an image too big to upload: the best JPEG or WebP within a byte budget.

CPU-bound from end to end (one decode, a few encodes, a comparison); it runs in an image worker
or a thread, never on the event loop. The ladder, and why:
- JPEG at quality 90 with full-resolution colour (4:4:4) first: indistinguishable from the
  original for a model's image, and a 4K frame encodes in about a tenth of a second.
- Then the same quality with halved colour resolution (4:2:0), then lower qualities: each step
  costs a little detail but keeps every pixel, which matters more in a preview than the last
  decibel.
- One WebP beside the JPEG that fits, at the same nominal quality: WebP often keeps more detail
  in fewer bytes (measured on 4K images: 39 dB in 4.2 MB against JPEG's 37.6 dB in 6.3 MB), but
  not always (it always halves the colour resolution), so both are decoded again and the one
  closer to the original wins.
- Only when nothing fits is the frame made smaller, by a step estimated from the smallest
  encoding seen (the size of an encoding grows about linearly with the pixel count).
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass

from PIL import ExifTags, ImageChops, ImageStat
from PIL import Image as Pil

from bot.errors import DamagedImage, ImageTooLarge
from bot.images.budget import MAX_SOURCE_PIXELS
from bot.images.encode import TRANSPOSE, displayable, save
from bot.images.formats import DECODE_ERRORS, PILLOW_FORMATS, pillow_reads, sniff

logger = logging.getLogger(__name__)

JPEG, WEBP = "image/jpeg", "image/webp"
# (quality, subsampling): Pillow's 0 is 4:4:4, 2 is 4:2:0.
JPEG_STEPS = ((90, 0), (90, 2), (85, 2), (80, 2), (75, 2))
# libwebp's method 2 encodes a 4K frame in about a second; 4 (its default) takes three for a
# file within 2 % of the same size.
WEBP_METHOD = 2
# A WebP must be this much closer to the original (PSNR) to win: a JPEG displays everywhere.
WEBP_MARGIN_DB = 0.25
SMALLEST_SIDE = 16
PSNR_BAND = 256  # rows
# Decoding a WebP again to compare it takes libwebp two RGBA canvases besides Pillow's frame
# (~180 MB at 4K): beyond 4K, where no model's image is, only JPEG keeps the worker bounded.
WEBP_MAX_PIXELS = 4096 * 4096
_GREY = frozenset({"L"})


@dataclass(frozen=True)
class Fitted:
    """What a worker sends back: the encoded preview and the two pixel sizes."""

    data: bytes
    mime_type: str
    size: tuple[int, int]
    original_size: tuple[int, int]
    detail: str  # the step that fitted, for the log


def fit(data: bytes, budget: int, formats: frozenset[str]) -> Fitted:
    """The best encoding in formats within budget bytes, at the original's size where one fits."""
    frame, original_size = _decoded(data)
    alpha = frame.mode in ("RGBA", "LA")
    flat = _on_white(frame) if alpha else frame
    icc = frame.info.get("icc_profile")
    while True:
        jpeg, smallest = _best_jpeg(flat, budget, icc) if JPEG in formats else (None, 0)
        quality = jpeg.quality if jpeg is not None else JPEG_STEPS[-1][0]
        webp = None
        if WEBP in formats and frame.width * frame.height <= WEBP_MAX_PIXELS:
            webp = _webp(frame, quality, budget, icc)
        if webp is not None:
            smallest = min(smallest or webp.size, webp.size)
        chosen = _better(jpeg, webp, flat, alpha=alpha)
        if chosen is not None:
            return Fitted(chosen.data, chosen.mime_type, flat.size, original_size, chosen.detail)
        frame, flat = _smaller(frame, flat, budget, smallest)


@dataclass(frozen=True)
class _Encoded:
    data: bytes
    mime_type: str
    quality: int
    detail: str

    @property
    def size(self) -> int:
        return len(self.data)


def _decoded(data: bytes) -> tuple[Pil.Image, tuple[int, int]]:
    """The first frame upright, in RGB(A) or L(A); an alpha channel that hides nothing dropped."""
    mime = sniff(data)
    formats = PILLOW_FORMATS.get(mime or "")
    if formats is None or not pillow_reads(formats):
        raise DamagedImage("The image cannot be opened here to make a preview of it.")
    try:
        # Not closed: closing would free the pixels that frame may share with it; the source
        # holds only the bytes in memory, which are the caller's anyway.
        source = Pil.open(io.BytesIO(data), formats=list(formats))
        width, height = source.size
        if width < 1 or height < 1 or width * height > MAX_SOURCE_PIXELS:
            raise DamagedImage("The image is too large to make a preview of it.")
        source.load()
        icc = source.info.get("icc_profile")
        frame = displayable(source)
        orientation = source.getexif().get(ExifTags.Base.Orientation, 1)
        if orientation in TRANSPOSE:  # exif_transpose would copy the frame even when upright
            frame = frame.transpose(TRANSPOSE[orientation])
    except (*DECODE_ERRORS, Pil.DecompressionBombError) as exc:
        raise DamagedImage() from exc
    if frame.mode == "LA":
        frame = frame.convert("RGBA")
    if frame.mode == "RGBA" and frame.getchannel("A").getextrema() == (255, 255):
        frame = frame.convert("RGB")
    if icc:
        frame.info["icc_profile"] = icc
    return frame, (width, height)


def _on_white(frame: Pil.Image) -> Pil.Image:
    """What a JPEG can hold of a transparent frame: the frame as it looks on white paper."""
    flat = Pil.new("RGB", frame.size, (255, 255, 255))
    flat.paste(frame, mask=frame.getchannel("A"))
    flat.info = dict(frame.info)
    return flat


def _best_jpeg(flat: Pil.Image, budget: int, icc: bytes | None) -> tuple[_Encoded | None, int]:
    """The first JPEG step that fits, and the smallest size seen (for the next downscale)."""
    smallest = 0
    for quality, subsampling in JPEG_STEPS:
        options: dict[str, object] = {"quality": quality}
        if flat.mode not in _GREY:
            options["subsampling"] = subsampling
        if icc:
            options["icc_profile"] = icc
        data = save(flat, "JPEG", **options)
        if len(data) <= budget:
            sampling = "" if flat.mode in _GREY else (" 4:4:4" if subsampling == 0 else " 4:2:0")
            return _Encoded(data, JPEG, quality, f"JPEG q{quality}{sampling}"), len(data)
        smallest = min(smallest or len(data), len(data))
    return None, smallest


def _webp(frame: Pil.Image, quality: int, budget: int, icc: bytes | None) -> _Encoded | None:
    options: dict[str, object] = {"quality": quality, "method": WEBP_METHOD}
    if icc:
        options["icc_profile"] = icc
    try:
        data = save(frame if frame.mode != "L" else frame.convert("RGB"), "WEBP", **options)
    except (OSError, ValueError):
        # libwebp refuses some large, detailed frames at high quality (its first partition
        # overflows); the JPEG ladder still has an answer.
        logger.debug("webp refused a %dx%d frame at q%d", *frame.size, quality)
        return None
    return _Encoded(data, WEBP, quality, f"WebP q{quality}") if len(data) <= budget else None


def _better(
    jpeg: _Encoded | None, webp: _Encoded | None, flat: Pil.Image, *, alpha: bool
) -> _Encoded | None:
    """The candidate closer to the original; a WebP keeps transparency, which a JPEG cannot."""
    if jpeg is None or webp is None:
        return jpeg or webp
    if alpha:
        return webp
    return webp if psnr(flat, webp.data) > psnr(flat, jpeg.data) + WEBP_MARGIN_DB else jpeg


def psnr(reference: Pil.Image, data: bytes) -> float:
    """Peak signal-to-noise ratio in dB of an encoding against the frame it was made from."""
    with Pil.open(io.BytesIO(data)) as encoded:
        encoded.load()
        decoded = encoded if encoded.mode == reference.mode else encoded.convert(reference.mode)
    squares = 0.0
    # Band by band: a whole-frame difference would be one more 4K frame in memory at once.
    for top in range(0, reference.height, PSNR_BAND):
        box = (0, top, reference.width, min(reference.height, top + PSNR_BAND))
        band = ImageChops.difference(reference.crop(box), decoded.crop(box))
        squares += sum(ImageStat.Stat(band).sum2)
    mse = squares / (len(reference.getbands()) * reference.width * reference.height)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def _smaller(
    frame: Pil.Image, flat: Pil.Image, budget: int, smallest: int
) -> tuple[Pil.Image, Pil.Image]:
    """Both frames a step smaller: as much as the smallest encoding says, between 50 and 90 %."""
    if min(frame.size) <= SMALLEST_SIDE or smallest == 0:
        raise ImageTooLarge(detail="no preview of it fits the upload limit")
    scale = min(0.9, max(0.5, math.sqrt(budget / smallest) * 0.95))
    size = (max(1, int(frame.width * scale)), max(1, int(frame.height * scale)))
    smaller = frame.resize(size, Pil.Resampling.LANCZOS, reducing_gap=3.0)
    smaller.info = dict(frame.info)
    if flat is frame:
        return smaller, smaller
    return smaller, _on_white(smaller)
