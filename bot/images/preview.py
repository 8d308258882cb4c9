"""Previews of results over a platform's upload limit: what the user sees, and says so.

The original's bytes are never changed (they stay retrievable, see bot.ops.links); the preview
is a separate image made within the limit, and its footer tells the user what it is.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.images.fit import JPEG, WEBP, Fitted, fit
from bot.images.formats import LABELS
from bot.images.workers import ImageWorkers
from bot.models import Image

logger = logging.getLogger(__name__)

PREVIEW_TYPES = frozenset({JPEG, WEBP})
# A platform's limit is on the file, but what it counts is not always what we count (a
# rewritten header, a rounding): the preview aims this far below it.
SAFETY = 1 / 32
MiB = 1024 * 1024
_NAMES = {JPEG: "JPEG", WEBP: "WebP", "image/png": "PNG", "image/gif": "GIF"}


@dataclass(frozen=True)
class Preview:
    """A stand-in for an image over an upload limit, with what the user should be told."""

    image: Image
    size: tuple[int, int]
    original_bytes: int
    original_mime: str
    original_size: tuple[int, int]
    limit_bytes: int
    platform: str = ""  # "Discord": named in the footer; empty: "the upload limit"

    @property
    def downscaled(self) -> bool:
        return self.size != self.original_size

    @property
    def footer(self) -> str:
        """One line for users: what the preview is, and why it is not the original."""
        where = f"{self.platform}'s" if self.platform else "the"
        return (
            f"Preview: {_name(self.image.mime_type)} {_pixels(self.size)}, "
            f"{_bytes(len(self.image.data))}. The original {_name(self.original_mime)} "
            f"({_pixels(self.original_size)}, {_bytes(self.original_bytes)}) is over "
            f"{where} {_bytes(self.limit_bytes)} upload limit."
        )


async def preview(
    image: Image,
    *,
    limit_bytes: int,
    platform: str = "",
    formats: frozenset[str] = PREVIEW_TYPES,
    workers: ImageWorkers | None = None,
) -> Preview | None:
    """None when the image fits limit_bytes as it is; else the best preview within it.

    JPEG and WebP are both tried unless formats names one (a platform that shows no WebP
    inline passes {"image/jpeg"}). The work runs in a worker process when workers are given,
    else in a thread. Raises DamagedImage when the image cannot be decoded here, and
    ImageTooLarge when even a small preview would not fit (a limit of a few hundred bytes).
    """
    if len(image.data) <= limit_bytes:
        return None
    usable = formats & PREVIEW_TYPES
    if not usable:
        raise ValueError(f"no preview format among {sorted(formats)}")
    budget = limit_bytes - max(1, int(limit_bytes * SAFETY))
    if workers is None:
        fitted = await asyncio.to_thread(fit, image.data, budget, usable)
    else:
        fitted = await workers.run(fit, image.data, budget, usable)
    return _preview_of(image, fitted, limit_bytes=limit_bytes, platform=platform)


def _preview_of(image: Image, fitted: Fitted, *, limit_bytes: int, platform: str) -> Preview:
    made = Preview(
        image=Image(fitted.data, fitted.mime_type),
        size=fitted.size,
        original_bytes=len(image.data),
        original_mime=image.mime_type,
        original_size=fitted.original_size,
        limit_bytes=limit_bytes,
        platform=platform,
    )
    logger.info(
        "preview of a %s of %d bytes (%s): %s %s, %d bytes, limit %d",
        image.mime_type,
        made.original_bytes,
        _pixels(made.original_size),
        fitted.detail,
        _pixels(made.size),
        len(fitted.data),
        limit_bytes,
    )
    return made


def _name(mime: str) -> str:
    return _NAMES.get(mime) or LABELS.get(mime) or mime.removeprefix("image/").upper()


def _pixels(size: tuple[int, int]) -> str:
    return f"{size[0]}×{size[1]}"


def _bytes(count: int) -> str:
    """A byte count as people read it: limits set in MiB stay MiB, sizes in MB or KB."""
    if count >= MiB and count % MiB == 0:
        return f"{count // MiB} MiB"
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f} MB"
    return f"{max(1, round(count / 1000))} KB"
