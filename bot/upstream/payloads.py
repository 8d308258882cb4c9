"""On the wire: request bodies per endpoint family, plus the JSON, base64 and image-type codecs."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from bot.errors import InvalidRequest, UnreadableResponse
from bot.images import sniff
from bot.models import Image
from bot.upstream.port import Api, Content, GenerationRequest, Part

# Image data (megabytes of base64) needs no JSON escaping: splicing it into the JSON around
# it instead of having the encoder scan it keeps the GIL free for the event loop.
_SLOT = "\x00spliced\x00"
_SLOT_JSON = json.dumps(_SLOT)
_SPLICE_OVER = 4096
_JSON_VERBATIM = bytes(set(range(0x20, 0x7F)) - {ord('"'), ord("\\")})
_SLICE = 256 * 1024  # base64 characters, a multiple of 4
_HEIF_TYPES = frozenset({"image/heic", "image/heif"})
# What an image model can answer with; anything else in an answer is not a picture.
_OUTPUT_TYPES = _HEIF_TYPES | {"image/png", "image/jpeg", "image/webp", "image/gif"}


def dumps(value: Any) -> str:
    """Compact JSON, exactly as json.dumps would write it, faster for long plain strings."""
    spliced: list[str] = []

    def lighten(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: lighten(item) for key, item in node.items()}
        if isinstance(node, list | tuple):
            return [lighten(item) for item in node]
        if isinstance(node, str) and len(node) > _SPLICE_OVER and _plain(node):
            spliced.append(node)
            return _SLOT
        return node

    text = json.dumps(lighten(value), ensure_ascii=False, separators=(",", ":"))
    if not spliced:
        return text
    pieces = text.split(_SLOT_JSON)
    if len(pieces) != len(spliced) + 1:  # the marker occurred in the data itself
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    joined = [pieces[0]]
    for data, piece in zip(spliced, pieces[1:], strict=True):
        joined += ['"', data, '"', piece]
    return "".join(joined)


def _plain(text: str) -> bool:
    # Deleting every character JSON leaves as is must leave nothing (fast on bytes). Long
    # texts go in slices, handing the GIL over between them as _decode_in_slices does.
    if not text.isascii():
        return False
    for start in range(0, len(text), _SLICE):
        if text[start : start + _SLICE].encode("ascii").translate(None, _JSON_VERBATIM):
            return False
        if len(text) > _SLICE:
            time.sleep(0)
    return True


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


def decode_base64(text: Any) -> bytes:
    """Strict base64 (standard or URL-safe alphabet); anything else is unreadable."""
    if not isinstance(text, str) or not text:
        raise UnreadableResponse("The image service sent an image without data.")
    if "\n" in text or "\r" in text or " " in text:
        text = "".join(text.split())
    altchars = b"-_" if ("-" in text or "_" in text) else None
    try:
        if len(text) <= _SLICE:
            return base64.b64decode(text, altchars=altchars, validate=True)
        return _decode_in_slices(text, altchars)
    except (binascii.Error, ValueError) as exc:
        raise UnreadableResponse("The image service sent image data that is not base64.") from exc


def _decode_in_slices(text: str, altchars: bytes | None) -> bytes:
    # Only bodies over a megabyte hold strings this long, and those are read in a worker
    # thread: handing the GIL over between slices lets the event loop in at once instead of
    # after a whole switch interval, which adds up to long stalls when hundreds are decoded.
    pieces = []
    for start in range(0, len(text), _SLICE):
        piece = text[start : start + _SLICE]
        pieces.append(base64.b64decode(piece, altchars=altchars, validate=True))
        time.sleep(0)
    return b"".join(pieces)


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
    return path, dumps(body).encode("utf-8")


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
    contents = [
        {"role": content.role, "parts": [p for part in content.parts for p in _gemini(part)]}
        for content in request.contents
    ]
    return {"contents": contents, "generationConfig": config}


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
    return body


def chat_body(request: GenerationRequest) -> dict[str, Any]:
    """chat/completions: one message per content; images as data-URL attachments."""
    return {"model": request.model, "messages": [_message(c) for c in request.contents]}


def _gemini(part: Part) -> Iterator[Any]:
    if part.raw_json is not None:
        yield from _raw_parts(part.raw_json)
        return
    if part.text is not None:
        yield {"text": part.text}
    if part.image is not None:
        yield {"inlineData": {"mimeType": part.image.mime_type, "data": _b64(part.image)}}


def _raw_parts(raw_json: str) -> list[Any]:
    # Replayed exactly as the model sent them: thought signatures must survive unchanged.
    try:
        raw = json.loads(raw_json)
    except ValueError as exc:
        raise InvalidRequest("The stored history of this thread could not be replayed.") from exc
    return raw if isinstance(raw, list) else [raw]


def _message(content: Content) -> dict[str, Any]:
    texts: list[str] = []
    attachments: list[dict[str, str]] = []
    for part in content.parts:
        if part.raw_json is not None:
            for raw in _raw_parts(part.raw_json):
                _add_raw(raw, texts, attachments)
            continue
        if part.text:
            texts.append(part.text)
        if part.image is not None:
            attachments.append(_attachment(part.image.mime_type, _b64(part.image)))
    message: dict[str, Any] = {
        "role": "assistant" if content.role == "model" else "user",
        "content": "\n".join(texts),
    }
    if attachments:
        message["experimental_attachments"] = attachments
    return message


def _add_raw(raw: Any, texts: list[str], attachments: list[dict[str, str]]) -> None:
    if not isinstance(raw, dict) or raw.get("thought") is True:
        return
    inline = raw.get("inlineData") or raw.get("inline_data")
    if isinstance(inline, dict) and isinstance(inline.get("data"), str):
        mime = inline.get("mimeType") or inline.get("mime_type") or "image/png"
        attachments.append(_attachment(str(mime), inline["data"]))
    elif isinstance(raw.get("text"), str) and raw["text"]:
        texts.append(raw["text"])


def _attachment(mime: str, b64: str) -> dict[str, str]:
    return {"contentType": mime, "url": f"data:{mime};base64,{b64}"}


def _b64(image: Image) -> str:
    data, step = image.data, _SLICE // 4 * 3  # whole 3-byte groups: the slices join exactly
    if len(data) <= step:
        return base64.b64encode(data).decode("ascii")
    # Megabyte attachments are encoded in a worker thread; slices let the event loop in.
    pieces = []
    for start in range(0, len(data), step):
        pieces.append(base64.b64encode(data[start : start + step]).decode("ascii"))
        time.sleep(0)
    return "".join(pieces)
