"""What one upstream answer holds once read, and the image-in-text shapes every reader shares."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot.errors import UnreadableResponse
from bot.models import Image, Source
from bot.upstream.payloads import decode_image, parse_data_url

_MARKDOWN_IMAGE = re.compile(r"!\[[^\]\n]*\]\(\s*<?((?:data:|https?://)[^)\s>]+)>?\s*\)")


@dataclass(frozen=True)
class Answer:
    """What one 200 answer held, before images behind http(s) URLs are fetched."""

    images: tuple[Image, ...] = ()
    image_urls: tuple[str, ...] = ()
    text: str = ""
    # Gemini-style parts for replay, each output image's base64 swapped for its sha256
    parts: tuple[Any, ...] = field(default=(), repr=False)
    # With several candidates (choices, data items): the parts of the one images[i] came
    # from, so each image's branch replays only its own history; empty: `parts` for all.
    candidate_parts: tuple[tuple[Any, ...], ...] = field(default=(), repr=False)
    tokens: tuple[int, int, int] = (0, 0, 0)  # input, output, total
    finish_reason: str | None = None
    model_version: str | None = None
    prompt_block: str | None = None
    sources: tuple[Source, ...] = ()

    def with_fetched(self, images: tuple[Image, ...]) -> Answer:
        """This answer with the images that were behind its URLs."""
        fetched = tuple(inline_part(image) for image in images)
        return replace(
            self,
            images=self.images + images,
            image_urls=(),
            parts=self.parts + fetched,
            # Fetched images belong to no one candidate's parts: all share one history.
            candidate_parts=() if images else self.candidate_parts,
        )


def merge_answers(made: Sequence[Answer], *, sources: tuple[Source, ...] = ()) -> Answer:
    """Several candidates (or choices) that each made images, as one answer: their images
    in order, each with its own candidate's parts; text and finish reason of the first."""
    several = len(made) > 1
    return Answer(
        images=tuple(image for answer in made for image in answer.images),
        image_urls=tuple(url for answer in made for url in answer.image_urls),
        text=made[0].text,
        parts=made[0].parts,
        candidate_parts=(
            tuple(a.parts for a in made for _ in range(len(a.images) + len(a.image_urls)))
            if several
            else ()
        ),
        finish_reason=made[0].finish_reason,
        sources=sources,
    )


def take_url(url: str, images: list[Image], urls: list[str], parts: list[Any]) -> None:
    """A data URL decoded into images (and a stored part), an http(s) URL kept to fetch."""
    data_url = parse_data_url(url)
    if data_url is not None:
        image = decode_image(data_url[1], data_url[0])
        images.append(image)
        parts.append(inline_part(image))
    elif url.startswith(("https://", "http://")):
        urls.append(url)
    elif url.startswith("data:"):
        raise UnreadableResponse("The image service sent a data URL that is not base64.")


def strip_markdown_images(text: str, images: list[Image], urls: list[str], parts: list[Any]) -> str:
    """The text without its markdown images, each taken out as an image (see take_url)."""
    if "![" not in text:
        return text

    def take(match: re.Match[str]) -> str:
        take_url(match.group(1), images, urls, parts)
        return ""

    return _MARKDOWN_IMAGE.sub(take, text)


def inline_part(image: Image) -> dict[str, Any]:
    """A Gemini-style part for an image that came in another shape, in its stored form."""
    return {"inlineData": {"mimeType": image.mime_type, "sha256": image.sha256}}


def join_texts(texts: list[str]) -> str:
    return "\n".join(text.strip() for text in texts if text.strip())
