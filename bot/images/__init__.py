"""Images: sniffed by content, checked, converted and downscaled to what a model accepts.

The model's own images are checked the same way before they count as a result. The heavy work
runs in ImageWorkers, a process pool shared by every job, when one is passed in. A result over
a platform's upload limit gets a preview within it.
"""

from __future__ import annotations

from bot.images.allocator import few_arenas
from bot.images.budget import MAX_IMAGE_BYTES, MAX_PIXELS, MAX_SIDE, MAX_SOURCE_PIXELS
from bot.images.formats import LABELS, sniff
from bot.images.pipeline import DAMAGED, normalise, normalise_all
from bot.images.preview import PREVIEW_TYPES, Preview, preview
from bot.images.verify import verify_output
from bot.images.workers import ImageWorkers

__all__ = [
    "DAMAGED",
    "LABELS",
    "MAX_IMAGE_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MAX_SOURCE_PIXELS",
    "PREVIEW_TYPES",
    "ImageWorkers",
    "Preview",
    "few_arenas",
    "normalise",
    "normalise_all",
    "preview",
    "sniff",
    "verify_output",
]
