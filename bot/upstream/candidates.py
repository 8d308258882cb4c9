"""Gemini-shaped answers: every candidate, its final image, and the parts kept for replay.

A Gemini 3 image model may send its interim drafts as ordinary image parts that carry a
thoughtSignature but no `thought` flag, the final image last. Only the final image of such a
candidate is a result; the drafts stay in its parts, verbatim, because the next turn must
replay them with their signatures. Parts flagged `"thought": true` are never shown either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from bot.models import Image
from bot.upstream.answers import Answer, join_texts, merge_answers, strip_markdown_images
from bot.upstream.grounding import read_sources
from bot.upstream.parts import reference_part
from bot.upstream.payloads import decode_image

_SIGNATURE_KEYS = ("thoughtSignature", "thought_signature")


def read_gemini(payload: Mapping[str, Any]) -> Answer:
    """The candidates' final images in order (those that made none skipped), each with its
    own parts; text and finish reason of the first that made one; every candidate's sources."""
    candidates = payload.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        feedback = payload.get("promptFeedback") or payload.get("prompt_feedback")
        if isinstance(feedback, Mapping):
            reason = feedback.get("blockReason") or feedback.get("block_reason") or "OTHER"
            return Answer(prompt_block=str(reason))
        return Answer(finish_reason="NO_CANDIDATES")
    read = [_candidate(c if isinstance(c, Mapping) else {}) for c in candidates]
    sources = read_sources(candidates)
    made = [candidate for candidate in read if candidate.images or candidate.image_urls]
    if not made:
        return replace(read[0], sources=sources)
    return merge_answers(made, sources=sources)


def _candidate(candidate: Mapping[str, Any]) -> Answer:
    reason = candidate.get("finishReason") or candidate.get("finish_reason")
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    parts = parts if isinstance(parts, list) else []
    finals = _finals(parts)
    images: list[Image] = []
    urls: list[str] = []
    texts: list[str] = []
    stored: list[Any] = []
    for index, part in enumerate(parts):
        if index in finals:
            inline = _inline(part)
            assert inline is not None
            declared = inline.get("mimeType") or inline.get("mime_type")
            image = decode_image(inline.get("data"), declared)
            images.append(image)
            stored.append(reference_part(part, image))
        elif isinstance(part, Mapping) and _shown_text(part):
            texts.append(_text_part(part, images, urls, stored))
        else:
            # Thoughts and drafts are never shown; replay needs them exactly as they came.
            stored.append(part)
    return Answer(
        images=tuple(images),
        image_urls=tuple(urls),
        text=join_texts(texts),
        parts=tuple(stored),
        finish_reason=str(reason).upper() if reason else None,
    )


def _finals(parts: Sequence[Any]) -> set[int]:
    """The indexes of the image parts that are results: all of them, unless signatures mark
    a thinking model's answer, whose earlier images are its drafts and only the last counts."""
    shown = [
        index
        for index, part in enumerate(parts)
        if isinstance(part, Mapping) and part.get("thought") is not True and _inline(part)
    ]
    signed = any(
        isinstance(part, Mapping) and any(part.get(key) for key in _SIGNATURE_KEYS)
        for part in parts
    )
    return set(shown[-1:] if signed else shown)


def _inline(part: Mapping[str, Any]) -> Mapping[str, Any] | None:
    inline = part.get("inlineData") or part.get("inline_data")
    return inline if isinstance(inline, Mapping) else None


def _shown_text(part: Mapping[str, Any]) -> bool:
    return part.get("thought") is not True and isinstance(part.get("text"), str)


def _text_part(
    part: Mapping[str, Any], images: list[Image], urls: list[str], stored: list[Any]
) -> str:
    """A text part's words; an image hidden in it as markdown is taken out as an image."""
    found: list[Any] = []
    text = strip_markdown_images(part["text"], images, urls, found)
    stored.append({**part, "text": text} if found else part)
    stored.extend(found)
    return text
