"""On the wire: request bodies per endpoint family, and the types of the images in answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from bot.errors import InvalidRequest, UnreadableResponse
from bot.images import sniff
from bot.models import Image
from bot.upstream.codec import Verbatim, decode_base64, encode_base64, encode_json, plain
from bot.upstream.port import Api, Content, GenerationRequest, Part

_HEIF_TYPES = frozenset({"image/heic", "image/heif"})
# What an image model can answer with; anything else in an answer is not a picture.
_OUTPUT_TYPES = _HEIF_TYPES | {"image/png", "image/jpeg", "image/webp", "image/gif"}


def sniff_image(data: bytes, declared: str | None = None) -> str | None:
    """The type of an image the model sent, from its bytes; None if it is not a picture.

    HEIC and HEIF share brands, so a declared one of the two is kept.
    """
    mime = sniff(data)
    if mime not in _OUTPUT_TYPES:
        return None
    if mime in _HEIF_TYPES and declared in _HEIF_TYPES:
        return declared
    return mime


def decode_image(b64: Any, declared: str | None = None) -> Image:
    """Image bytes from base64, typed by their magic bytes; non-images are unreadable."""
    data = decode_base64(b64)
    mime = sniff_image(data, declared)
    if mime is None:
        raise UnreadableResponse("The image service sent data that is not an image.")
    return Image(data=data, mime_type=mime)


def parse_data_url(url: str) -> tuple[str, str] | None:
    """(declared mime, base64 text) of a base64 data URL, else None."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    return header.split(";", 1)[0], data


def encode_request(api: Api, request: GenerationRequest) -> tuple[str, bytes]:
    """(path, JSON body) of the call that serves a request on an endpoint family."""
    if api is Api.OPENAI_IMAGES:
        path, body = "/v1/images/generations", images_body(request)
    elif api is Api.OPENAI_CHAT:
        path, body = "/v1/chat/completions", chat_body(request)
    else:
        path = f"/v1beta/models/{quote(request.model, safe='')}:generateContent"
        body = gemini_body(request)
    return path, encode_json(body)


def request_size(request: GenerationRequest) -> int:
    """About how many bytes of images and replayed parts encoding a request writes."""
    size = 0
    for content in request.contents:
        for part in content.parts:
            if part.raw is not None:
                size += len(part.raw) if isinstance(part.raw, str) else part.raw.size
            elif part.image is not None:
                size += len(part.image.data)
    return size


def gemini_body(request: GenerationRequest) -> dict[str, Any]:
    """generateContent: the conversation, TEXT+IMAGE modalities, ratio and size when set."""
    image_config: dict[str, str] = {}
    if request.ratio is not None:
        image_config["aspectRatio"] = request.ratio
    if request.image_size is not None:
        image_config["imageSize"] = request.image_size
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
    if image_config:
        config["imageConfig"] = image_config
    if request.count > 1:
        # Only when asked: the body without it is the one every model has always accepted.
        config["candidateCount"] = request.count
    contents = [
        {"role": content.role, "parts": [p for part in content.parts for p in _gemini(part)]}
        for content in request.contents
    ]
    body: dict[str, Any] = {"contents": contents, "generationConfig": config}
    if request.search:
        body["tools"] = [{"google_search": {}}]
    return body


def images_body(request: GenerationRequest) -> dict[str, Any]:
    """images/generations: the user's texts as one prompt, the ratio as `size`."""
    prompt = "\n".join(
        part.text
        for content in request.contents
        if content.role == "user"
        for part in content.parts
        if part.text
    )
    body: dict[str, Any] = {"model": request.model, "prompt": prompt}
    if request.ratio is not None:
        body["size"] = request.ratio
    if request.count > 1:
        body["n"] = request.count
    return body


def chat_body(request: GenerationRequest) -> dict[str, Any]:
    """chat/completions: one message per content; images as data-URL attachments."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(c) for c in request.contents],
    }
    if request.count > 1:
        body["n"] = request.count
    return body


def _gemini(part: Part) -> Iterator[Any]:
    if part.raw is not None:
        yield from _raw_parts(part)
        return
    if part.text is not None:
        yield {"text": part.text}
    if part.image is not None:
        data = encode_base64(part.image.data)
        yield {"inlineData": {"mimeType": part.image.mime_type, "data": data}}


def _raw_parts(part: Part) -> list[Any]:
    # Replayed exactly as the model sent them: thought signatures must survive unchanged.
    if part.raw is None or isinstance(part.raw, str):
        try:
            raw = json.loads(part.raw or "")
        except ValueError as exc:
            message = "The stored history of this thread could not be replayed."
            raise InvalidRequest(message) from exc
    else:
        raw = part.raw.value()
    return raw if isinstance(raw, list) else [raw]


def _message(content: Content) -> dict[str, Any]:
    texts: list[str] = []
    attachments: list[dict[str, Any]] = []
    for part in content.parts:
        if part.raw is not None:
            for raw in _raw_parts(part):
                _add_raw(raw, texts, attachments)
            continue
        if part.text:
            texts.append(part.text)
        if part.image is not None:
            attachments.append(_attachment(part.image.mime_type, encode_base64(part.image.data)))
    message: dict[str, Any] = {
        "role": "assistant" if content.role == "model" else "user",
        "content": "\n".join(texts),
    }
    if attachments:
        message["experimental_attachments"] = attachments
    return message


def _add_raw(raw: Any, texts: list[str], attachments: list[dict[str, Any]]) -> None:
    if not isinstance(raw, dict) or raw.get("thought") is True:
        return
    inline = raw.get("inlineData") or raw.get("inline_data")
    if isinstance(inline, dict) and isinstance(inline.get("data"), str | Verbatim):
        mime = inline.get("mimeType") or inline.get("mime_type") or "image/png"
        attachments.append(_attachment(str(mime), inline["data"]))
    elif isinstance(raw.get("text"), str) and raw["text"]:
        texts.append(raw["text"])


def _attachment(mime: str, b64: str | Verbatim) -> dict[str, Any]:
    head = f"data:{mime};base64,"
    if isinstance(b64, Verbatim) and plain(head):
        return {"contentType": mime, "url": Verbatim(head.encode("ascii"), *b64.pieces)}
    return {"contentType": mime, "url": head + str(b64)}
