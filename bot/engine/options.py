"""The options a request may carry beyond its prompt: how many images, and at what size."""

from __future__ import annotations

from bot.errors import UnsupportedOption
from bot.models import Turn
from bot.upstream import ModelCapabilities

MAX_COUNT = 4  # images per request: what one message shows as a grid

UPSCALE_PROMPT = (
    "Render this exact image again at a higher resolution: keep the composition, subjects, "
    "colours, text and every detail the same; only add the fine detail a larger size shows."
)


def upscale_size(caps: ModelCapabilities, current: str | None) -> str:
    """The size an upscale of a result at `current` renders at; refused when none is larger."""
    if not caps.image_sizes:
        raise UnsupportedOption(
            f"{caps.name} makes images in one size only, so it cannot upscale. Make the image "
            "with a model that offers 2K or 4K (gemini-3.1-flash-image, gemini-3-pro-image)."
        )
    target = caps.largest_size
    if (current or caps.default_size) == target:
        raise UnsupportedOption(f"This image is already {target}, the largest {caps.name} makes.")
    return target


def kept_size(parent: Turn, caps: ModelCapabilities) -> str | None:
    """A refinement keeps its parent's size, where the model it uses makes that size."""
    return parent.size if parent.size in caps.image_sizes else None
