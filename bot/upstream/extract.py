"""Reading upstream answers: one extractor for every image shape the three endpoints return."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot.errors import NoImage, OutputBlocked, PromptBlocked, TextOnly, UnreadableResponse
from bot.models import Image, Usage
from bot.upstream.codec import dumps, loads
from bot.upstream.parts import reference_part
from bot.upstream.payloads import decode_image, parse_data_url
from bot.upstream.port import Generation
from bot.upstream.retry import error_status

OUTPUT_BLOCKED = frozenset(
    {"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "PROHIBITED_CONTENT", "SAFETY"}
    | {"IMAGE_RECITATION", "RECITATION", "CONTENT_FILTER"}
)
NO_IMAGE_REASONS = frozenset(
    {"NO_IMAGE", "MAX_TOKENS", "OTHER", "IMAGE_OTHER", "BLOCKLIST", "SPII", "LENGTH"}
)

_MARKDOWN_IMAGE = re.compile(r"!\[[^\]\n]*\]\(\s*<?((?:data:|https?://)[^)\s>]+)>?\s*\)")


@dataclass(frozen=True)
class Answer:
    """What one 200 answer held, before images behind http(s) URLs are fetched."""

    images: tuple[Image, ...] = ()
    image_urls: tuple[str, ...] = ()
    text: str = ""
    # Gemini-style parts for replay, each output image's base64 swapped for its sha256
    parts: tuple[Any, ...] = field(default=(), repr=False)
    tokens: tuple[int, int, int] = (0, 0, 0)  # input, output, total
    finish_reason: str | None = None
    model_version: str | None = None
    prompt_block: str | None = None

    def with_fetched(self, images: tuple[Image, ...]) -> Answer:
        """This answer with the images that were behind its URLs."""
        return replace(
            self,
            images=self.images + images,
            image_urls=(),
            parts=self.parts + tuple(_inline_part(image) for image in images),
        )


def parse_json(body: bytes) -> Any:
    """The JSON of a body; empty, HTML or malformed bodies are unreadable."""
    stripped = body[:512].lstrip()
    if not stripped:
        raise UnreadableResponse("The image service sent an empty answer.")
    if stripped.startswith(b"<"):
        raise UnreadableResponse("The image service sent a web page instead of an answer.")
    try:
        return loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnreadableResponse("The image service sent an answer that is not JSON.") from exc


def digest(content: bytes) -> Generation | Answer | tuple[int, Any]:
    """All the work on a 200 body in one step (one thread hop, when it is large).

    The Generation it amounts to; or (status, payload) of an error it embeds; or, when its
    images are behind URLs, the Answer that names them (see conclude_fetched).
    """
    payload = parse_json(content)
    embedded = error_status(payload)
    if embedded is not None:
        return embedded, payload
    answer = read_answer(payload)
    return answer if answer.image_urls else conclude(answer)


def conclude_fetched(answer: Answer, fetched: tuple[Image, ...]) -> Generation:
    """What an answer amounts to with the images that were behind its URLs."""
    return conclude(answer.with_fetched(fetched))


def read_answer(payload: Any) -> Answer:
    """Everything a 200 answer holds, whichever endpoint shape it has."""
    if not isinstance(payload, Mapping):
        raise UnreadableResponse("The image service sent an answer of an unknown shape.")
    if "candidates" in payload or "promptFeedback" in payload or "prompt_feedback" in payload:
        answer = _read_gemini(payload)
    elif isinstance(payload.get("choices"), list):
        answer = _read_chat(payload)
    elif isinstance(payload.get("data"), list):
        answer = _read_image_list(payload["data"])
    else:
        raise UnreadableResponse("The image service sent an answer of an unknown shape.")
    return replace(answer, tokens=read_tokens(payload), model_version=_model_version(payload))


def conclude(answer: Answer) -> Generation:
    """The Generation an answer amounts to, or the typed reason it has no image."""
    if answer.prompt_block is not None:
        raise PromptBlocked(answer.prompt_block)
    reason = answer.finish_reason
    if not answer.images:
        if reason in OUTPUT_BLOCKED:
            raise OutputBlocked(reason)
        if reason in NO_IMAGE_REASONS:
            raise NoImage(reason, answer.text)
        if answer.text:
            raise TextOnly(answer.text)
        raise NoImage(reason or "NO_IMAGE", "")
    tokens_in, tokens_out, total = answer.tokens
    return Generation(
        images=answer.images,
        text=answer.text,
        usage=Usage(tokens_in, tokens_out, total, images=len(answer.images)),
        parts_json=dumps(list(answer.parts)),
        finish_reason=reason,
        model_version=answer.model_version,
    )


def read_tokens(payload: Mapping[str, Any]) -> tuple[int, int, int]:
    """(input, output, total) tokens from usageMetadata or an OpenAI usage object."""
    meta = payload.get("usageMetadata") or payload.get("usage_metadata")
    if isinstance(meta, Mapping):
        tokens_in = _count(meta, "promptTokenCount", "prompt_token_count")
        tokens_out = _count(meta, "candidatesTokenCount", "candidates_token_count")
        total = _count(meta, "totalTokenCount", "total_token_count")
    elif isinstance(usage := payload.get("usage"), Mapping):
        tokens_in = _count(usage, "input_tokens", "prompt_tokens")
        tokens_out = _count(usage, "output_tokens", "completion_tokens")
        total = _count(usage, "total_tokens")
    else:
        return (0, 0, 0)
    return (tokens_in, tokens_out, total or tokens_in + tokens_out)


def _count(mapping: Mapping[str, Any], *keys: str) -> int:
    for key in keys:
        value = mapping.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
    return 0


def _model_version(payload: Mapping[str, Any]) -> str | None:
    version = payload.get("modelVersion") or payload.get("model_version") or payload.get("model")
    return version if isinstance(version, str) else None


def _read_gemini(payload: Mapping[str, Any]) -> Answer:
    candidates = payload.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        feedback = payload.get("promptFeedback") or payload.get("prompt_feedback")
        if isinstance(feedback, Mapping):
            reason = feedback.get("blockReason") or feedback.get("block_reason") or "OTHER"
            return Answer(prompt_block=str(reason))
        return Answer(finish_reason="NO_CANDIDATES")
    candidate = candidates[0] if isinstance(candidates[0], Mapping) else {}
    reason = candidate.get("finishReason") or candidate.get("finish_reason")
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    if not isinstance(parts, list):
        parts = []
    images: list[Image] = []
    urls: list[str] = []
    texts: list[str] = []
    stored: list[Any] = []
    for part in parts:
        if not isinstance(part, Mapping) or part.get("thought") is True:
            stored.append(part)  # drafts are never shown, but replay needs them as they came
            continue
        inline = part.get("inlineData") or part.get("inline_data")
        if isinstance(inline, Mapping):
            declared = inline.get("mimeType") or inline.get("mime_type")
            image = decode_image(inline.get("data"), declared)
            images.append(image)
            stored.append(reference_part(part, image))
        elif isinstance(part.get("text"), str):
            texts.append(_text_part(part, images, urls, stored))
        else:
            stored.append(part)
    return Answer(
        images=tuple(images),
        image_urls=tuple(urls),
        text=_join(texts),
        parts=tuple(stored),
        finish_reason=str(reason).upper() if reason else None,
    )


def _text_part(
    part: Mapping[str, Any], images: list[Image], urls: list[str], stored: list[Any]
) -> str:
    """A text part's words; an image hidden in it as markdown is taken out as an image."""
    found: list[Any] = []
    text = _strip_markdown_images(part["text"], images, urls, found)
    stored.append({**part, "text": text} if found else part)
    stored.extend(found)
    return text


def _read_image_list(items: list[Any]) -> Answer:
    parts: list[Any] = []
    images: list[Image] = []
    urls: list[str] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if item.get("b64_json"):
            image = decode_image(item["b64_json"])
            images.append(image)
            parts.append(_inline_part(image))
        elif isinstance(item.get("url"), str):
            _take_url(item["url"], images, urls, parts)
    return Answer(images=tuple(images), image_urls=tuple(urls), parts=tuple(parts))


def _read_chat(payload: Mapping[str, Any]) -> Answer:
    choice = payload["choices"][0] if payload["choices"] else {}
    choice = choice if isinstance(choice, Mapping) else {}
    message = choice.get("message") or choice.get("delta") or {}
    images: list[Image] = []
    urls: list[str] = []
    parts: list[Any] = []
    texts: list[str] = []
    content = message.get("content") if isinstance(message, Mapping) else None
    for piece in content if isinstance(content, list) else [content]:
        if isinstance(piece, str):
            texts.append(_strip_markdown_images(piece, images, urls, parts))
        elif isinstance(piece, Mapping) and isinstance(piece.get("text"), str):
            texts.append(_strip_markdown_images(piece["text"], images, urls, parts))
        elif isinstance(piece, Mapping):
            _take_url(_image_url(piece), images, urls, parts)
    listed = message.get("images") if isinstance(message, Mapping) else None
    for item in listed if isinstance(listed, list) else ():
        if isinstance(item, Mapping):
            _take_url(_image_url(item), images, urls, parts)
    text = _join(texts)
    reason = choice.get("finish_reason")
    return Answer(
        images=tuple(images),
        image_urls=tuple(urls),
        text=text,
        parts=((({"text": text},) if text else ()) + tuple(parts)),
        finish_reason=str(reason).upper() if reason else None,
    )


def _image_url(item: Mapping[str, Any]) -> str:
    value = item.get("image_url") or item.get("url")
    if isinstance(value, Mapping):
        value = value.get("url")
    return value if isinstance(value, str) else ""


def _take_url(url: str, images: list[Image], urls: list[str], parts: list[Any]) -> None:
    data_url = parse_data_url(url)
    if data_url is not None:
        image = decode_image(data_url[1], data_url[0])
        images.append(image)
        parts.append(_inline_part(image))
    elif url.startswith(("https://", "http://")):
        urls.append(url)
    elif url.startswith("data:"):
        raise UnreadableResponse("The image service sent a data URL that is not base64.")


def _strip_markdown_images(
    text: str, images: list[Image], urls: list[str], parts: list[Any]
) -> str:
    if "![" not in text:
        return text

    def take(match: re.Match[str]) -> str:
        _take_url(match.group(1), images, urls, parts)
        return ""

    return _MARKDOWN_IMAGE.sub(take, text)


def _inline_part(image: Image) -> dict[str, Any]:
    """A Gemini-style part for an image that came in another shape, in its stored form."""
    return {"inlineData": {"mimeType": image.mime_type, "sha256": image.sha256}}


def _join(texts: list[str]) -> str:
    return "\n".join(text.strip() for text in texts if text.strip())
