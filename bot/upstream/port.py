"""The image-generator port: request and result values, the model table, the pre-flight check."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

from bot.errors import TooManyImages, UnknownModel, UnsupportedOption
from bot.models import Image, Usage


class Api(StrEnum):
    """The upstream endpoint families."""

    GEMINI = "gemini"
    OPENAI_IMAGES = "openai-images"
    OPENAI_CHAT = "openai-chat"


RATIOS: tuple[str, ...] = (
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
)  # fmt: skip

# Output sizes of gemini-2.5-flash-image per aspect ratio.
RATIO_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}

RETIRED_MODELS: dict[str, str] = {
    "gemini-2.5-flash-image-preview": "gemini-2.5-flash-image",
    "gemini-2.0-flash-preview-image-generation": "gemini-2.5-flash-image",
}


@dataclass(frozen=True)
class ModelCapabilities:
    """What one model accepts; a request is checked against it before it is sent."""

    name: str
    max_images: int
    mime_types: frozenset[str]
    ratios: tuple[str, ...]
    image_sizes: tuple[str, ...] = ()  # empty: imageSize is not accepted
    needs_signatures: bool = False
    price_per_image_usd: float = 0.039
    output_tokens_per_image: int = 1290


_BASE_MIME = frozenset({"image/png", "image/jpeg", "image/webp"})
_HEIF_MIME = _BASE_MIME | {"image/heic", "image/heif"}

MODELS: dict[str, ModelCapabilities] = {
    caps.name: caps
    for caps in (
        ModelCapabilities(
            name="gemini-2.5-flash-image",
            max_images=3,
            mime_types=_BASE_MIME,
            ratios=RATIOS,
        ),
        ModelCapabilities(
            name="gemini-3-pro-image-preview",
            max_images=14,
            mime_types=_HEIF_MIME,
            ratios=RATIOS,
            image_sizes=("1K", "2K", "4K"),
            needs_signatures=True,
            price_per_image_usd=0.134,
            output_tokens_per_image=1120,
        ),
        ModelCapabilities(
            name="gemini-3.1-flash-image-preview",
            max_images=14,
            mime_types=_HEIF_MIME,
            ratios=(*RATIOS, "1:4", "4:1", "1:8", "8:1"),
            image_sizes=("512", "1K", "2K", "4K"),
            needs_signatures=True,
            price_per_image_usd=0.067,
        ),
    )
}


def capabilities(model: str) -> ModelCapabilities:
    """The capability row for a model; retired names raise, unknown names get 2.5's limits."""
    if model in RETIRED_MODELS:
        raise UnknownModel(model, RETIRED_MODELS[model])
    known = MODELS.get(model)
    if known is not None:
        return known
    default = MODELS["gemini-2.5-flash-image"]
    return ModelCapabilities(
        name=model,
        max_images=default.max_images,
        mime_types=default.mime_types,
        ratios=default.ratios,
        needs_signatures=model.startswith("gemini-3"),
    )


class Replayed(Protocol):
    """A stored model part to replay, written out (its image as base64) only when it is sent.

    That happens in the worker thread that encodes a large request, never on the event loop
    while the request is built (bot.upstream.parts.restore_parts makes these).
    """

    @property
    def size(self) -> int:
        """About how many bytes the part adds to a request body."""
        ...

    @property
    def json(self) -> str:
        """The part's JSON as it is sent, image data included (written on first use)."""
        ...

    def value(self) -> Any:
        """The part as sent, for the body encoder: its image data as a codec.Verbatim."""
        ...


@dataclass(frozen=True, init=False)
class Part:
    """One part of a message: text, an image, or a model part replayed verbatim (raw JSON).

    A replayed part's raw JSON is a string, or a Replayed that writes it when first read.
    """

    text: str | None
    image: Image | None
    raw: str | Replayed | None = field(repr=False)

    def __init__(
        self,
        text: str | None = None,
        image: Image | None = None,
        raw_json: str | Replayed | None = None,
    ) -> None:
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "image", image)
        object.__setattr__(self, "raw", raw_json)

    @property
    def raw_json(self) -> str | None:
        """The replayed part's JSON, written now if it was deferred."""
        raw = self.raw
        return raw if raw is None or isinstance(raw, str) else raw.json


@dataclass(frozen=True)
class Content:
    """One message of the conversation sent upstream."""

    role: Literal["user", "model"]
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class GenerationRequest:
    """Everything one upstream call needs, independent of the endpoint family."""

    model: str
    contents: tuple[Content, ...]
    ratio: str | None = None
    image_size: str | None = None

    @property
    def images(self) -> tuple[Image, ...]:
        return tuple(
            part.image for content in self.contents for part in content.parts if part.image
        )


@dataclass(frozen=True)
class Generation:
    """A successful upstream answer: at least one image, maybe text."""

    images: tuple[Image, ...]
    text: str
    usage: Usage
    # The model's parts (a JSON list), signatures verbatim, each output image's base64
    # replaced by {"sha256": ...} of its entry in `images` (bot.upstream.parts.restore_parts).
    parts_json: str
    finish_reason: str | None = None
    model_version: str | None = None


class ImageGenerator(Protocol):
    """The port the core calls to make images."""

    async def generate(self, request: GenerationRequest) -> Generation: ...

    async def aclose(self) -> None: ...


def check_request(request: GenerationRequest, *, api: Api = Api.GEMINI) -> ModelCapabilities:
    """Refuse, before sending, what the model cannot accept."""
    caps = capabilities(request.model)
    if request.ratio is not None and request.ratio not in caps.ratios:
        raise UnsupportedOption(
            f"Unknown aspect ratio '{request.ratio}'. Choose one of: {', '.join(caps.ratios)}."
        )
    if request.image_size is not None and request.image_size not in caps.image_sizes:
        accepted = ", ".join(caps.image_sizes) or "none (this model has one size)"
        raise UnsupportedOption(
            f"Image size '{request.image_size}' is not accepted by {caps.name}; "
            f"accepted: {accepted}."
        )
    images = request.images
    if len(images) > caps.max_images:
        raise TooManyImages(limit=caps.max_images, given=len(images))
    for image in images:
        if image.mime_type not in caps.mime_types:
            raise UnsupportedOption(
                f"{caps.name} does not accept {image.mime_type} images; "
                f"send {', '.join(sorted(caps.mime_types))}."
            )
    if api is Api.OPENAI_IMAGES and images:
        raise UnsupportedOption(
            "The openai-images endpoint only makes images from text; set IMAGE_API=gemini "
            "or openai-chat to edit images."
        )
    return caps
