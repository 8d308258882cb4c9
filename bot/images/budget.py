"""The budgets an image must fit before it is sent upstream, and the size that fits them.

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

import math
from dataclasses import dataclass

MAX_IMAGE_BYTES = 7_000_000
MAX_PIXELS = 2048 * 2048
MAX_SIDE = 4096
MAX_SOURCE_PIXELS = 80_000_000
DRAFT_TOLERANCE = 0.8


@dataclass(frozen=True)
class Budget:
    """What one image may be: the formats the model takes, its byte and pixel budgets."""

    accepted: frozenset[str]
    max_bytes: int
    max_pixels: int
    max_source_pixels: int


def target_size(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    """The largest size with the same aspect ratio within the pixel budget and MAX_SIDE."""
    width, height = size
    scale = min(1.0, math.sqrt(max_pixels / (width * height)), MAX_SIDE / max(width, height))
    if scale >= 1.0:
        return size
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
