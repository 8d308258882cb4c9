"""Reading upstream answers: one extractor for every image shape the three endpoints return."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bot.errors import NoImage, OutputBlocked, PromptBlocked, TextOnly, UnreadableResponse
from bot.models import Image, Usage
from bot.upstream.answers import (
    Answer,
    inline_part,
    join_texts,
    merge_answers,
    strip_markdown_images,
    take_url,
)
from bot.upstream.candidates import read_gemini
from bot.upstream.codec import dumps, loads
from bot.upstream.payloads import decode_image
from bot.upstream.port import Generation
from bot.upstream.retry import error_status

__all__ = ["Answer", "conclude", "conclude_fetched", "digest", "parse_json", "read_answer"]

OUTPUT_BLOCKED = frozenset(
    {"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "PROHIBITED_CONTENT", "SAFETY"}
    | {"IMAGE_RECITATION", "RECITATION", "CONTENT_FILTER"}
)
NO_IMAGE_REASONS = frozenset(
    {"NO_IMAGE", "MAX_TOKENS", "OTHER", "IMAGE_OTHER", "BLOCKLIST", "SPII", "LENGTH"}
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
        answer = read_gemini(payload)
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
    # Per-image histories only when there is exactly one per image; else one shared history.
    per_image = len(answer.candidate_parts) == len(answer.images) > 1
    return Generation(
        images=answer.images,
        text=answer.text,
        usage=Usage(tokens_in, tokens_out, total, images=len(answer.images)),
        parts_json=dumps(list(answer.parts)),
        finish_reason=reason,
        model_version=answer.model_version,
        candidate_parts=(
            tuple(dumps(list(parts)) for parts in answer.candidate_parts) if per_image else ()
        ),
        sources=answer.sources,
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


def _read_image_list(items: list[Any]) -> Answer:
    """data[]: one image per item (`n` of them), each item its own history."""
    parts: list[Any] = []
    images: list[Image] = []
    urls: list[str] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if item.get("b64_json"):
            image = decode_image(item["b64_json"])
            images.append(image)
            parts.append(inline_part(image))
        elif isinstance(item.get("url"), str):
            take_url(item["url"], images, urls, parts)
    return Answer(
        images=tuple(images),
        image_urls=tuple(urls),
        parts=tuple(parts),
        candidate_parts=tuple((part,) for part in parts) if len(parts) > 1 else (),
    )


def _read_chat(payload: Mapping[str, Any]) -> Answer:
    """choices[]: each choice's words and images (`n` choices: one history each)."""
    read = [_read_choice(c) for c in payload["choices"] if isinstance(c, Mapping)]
    made = [answer for answer in read if answer.images or answer.image_urls] or read[:1]
    return merge_answers(made) if made else Answer()


def _read_choice(choice: Mapping[str, Any]) -> Answer:
    message = choice.get("message") or choice.get("delta") or {}
    images: list[Image] = []
    urls: list[str] = []
    parts: list[Any] = []
    texts: list[str] = []
    content = message.get("content") if isinstance(message, Mapping) else None
    for piece in content if isinstance(content, list) else [content]:
        if isinstance(piece, str):
            texts.append(strip_markdown_images(piece, images, urls, parts))
        elif isinstance(piece, Mapping) and isinstance(piece.get("text"), str):
            texts.append(strip_markdown_images(piece["text"], images, urls, parts))
        elif isinstance(piece, Mapping):
            take_url(_image_url(piece), images, urls, parts)
    listed = message.get("images") if isinstance(message, Mapping) else None
    for item in listed if isinstance(listed, list) else ():
        if isinstance(item, Mapping):
            take_url(_image_url(item), images, urls, parts)
    text = join_texts(texts)
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
