"""The image-generator port: request and result values, the model table, the pre-flight check."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

from bot.errors import TooManyImages, UnsupportedOption
from bot.models import Image, Source, Usage
from bot.upstream.catalog import ModelCapabilities, ModelTable


class Api(StrEnum):
    """The upstream endpoint families."""

    GEMINI = "gemini"
    OPENAI_IMAGES = "openai-images"
    OPENAI_CHAT = "openai-chat"


BUILTIN = ModelTable()


def capabilities(model: str, models: ModelTable = BUILTIN) -> ModelCapabilities:
    """The capability row for a model: retired names raise, unlisted ones get their family's."""
    return models.get(model)


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
    count: int = 1  # images wanted from this one call (the API's `n` / candidateCount)
    search: bool = False  # ground on Google Search

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
    # With several candidates (count > 1): the parts JSON of the candidate each image came
    # from, images[i] from candidate_parts[i]; empty: parts_json is every image's history.
    candidate_parts: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()  # what a grounded answer drew on
    possibly_billed: int = 0  # attempts retried after a request that may have made an image

    def parts_for(self, index: int) -> str:
        """The history parts to store with images[index]."""
        return self.candidate_parts[index] if self.candidate_parts else self.parts_json


class ImageGenerator(Protocol):
    """The port the core calls to make images."""

    async def generate(self, request: GenerationRequest) -> Generation: ...

    async def aclose(self) -> None: ...


def check_request(
    request: GenerationRequest, *, api: Api = Api.GEMINI, models: ModelTable = BUILTIN
) -> ModelCapabilities:
    """Refuse, before sending, what the model cannot accept, saying what it can do."""
    caps = models.get(request.model)
    check_options(caps, ratio=request.ratio, size=request.image_size, search=request.search)
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


def check_options(
    caps: ModelCapabilities, *, ratio: str | None, size: str | None, search: bool = False
) -> None:
    """Refuse an aspect ratio, an output size or grounding the model does not offer."""
    if ratio is not None and ratio not in caps.ratios:
        raise UnsupportedOption(
            f"Unknown aspect ratio '{ratio}' for {caps.name}. Choose one of: "
            f"{', '.join(caps.ratios)}."
        )
    if size is not None and size not in caps.image_sizes and size != caps.default_size:
        accepted = ", ".join(caps.image_sizes) or f"only {caps.default_size} (one size)"
        raise UnsupportedOption(
            f"{caps.name} cannot make {size} images; it makes {accepted}. "
            "Choose another size or model."
        )
    if search and not caps.grounding:
        raise UnsupportedOption(
            f"{caps.name} cannot search the web for an image; gemini-3.1-flash-image and "
            "gemini-3-pro-image can."
        )
