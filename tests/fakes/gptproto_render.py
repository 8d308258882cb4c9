"""What the gptproto fake reads from requests, and its answers in each endpoint's real shapes."""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.gptproto_outcomes import Outcome

IMAGE_INPUT_TOKENS = 258


@dataclass
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = field(repr=False)
    json: Any = field(repr=False)
    family: str | None = None  # "gemini", "images", "chat"; None for anything else
    model: str | None = None
    serial: int = 0  # 1, 2, 3... for generation requests; images made for it carry it
    produced: list[bytes] = field(default_factory=list, repr=False)
    streamed: int = 0  # body bytes written so far, for streamed outcomes

    def header(self, name: str) -> str | None:
        """A header by case-insensitive name."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def input_images(self) -> list[bytes]:
        """The image bytes this request carried (inline data or data-URL attachments)."""
        found: list[bytes] = []
        body = self.json if isinstance(self.json, dict) else {}
        for content in body.get("contents") or []:
            for part in content.get("parts") or []:
                inline = part.get("inlineData") or part.get("inline_data")
                if inline:
                    found.append(base64.b64decode(inline["data"]))
        for message in body.get("messages") or []:
            for attachment in message.get("experimental_attachments") or []:
                found.append(base64.b64decode(attachment["url"].split(",", 1)[1]))
        return found


@dataclass(frozen=True)
class Call:
    """What the fake understood of one generation request."""

    family: str  # "gemini" | "images" | "chat"
    model: str
    serial: int
    ratio: str | None
    input_images: int
    text_chars: int
    image_size: str | None = None
    candidates: int = 1  # candidateCount (Gemini) or n (the OpenAI-style endpoints)
    search: bool = False  # tools: google_search
    user_images: int = 0  # images the user sent this time (replayed model images apart)


@dataclass(frozen=True)
class Made:
    """Images made for one answer: (mime, data) each, thought drafts apart, their URLs.

    `data` is a placeholder; `stand_ins` pairs each (as JSON escapes it) with the real base64.
    """

    images: tuple[tuple[str, str], ...] = ()  # every candidate's, candidate after candidate
    raw: tuple[bytes, ...] = field(default=(), repr=False)  # the images' bytes
    drafts: tuple[tuple[str, str], ...] = ()  # flagged "thought": true
    signed_drafts: tuple[tuple[str, str], ...] = ()  # unflagged, signed; per candidate in turn
    draft_raw: tuple[bytes, ...] = field(default=(), repr=False)
    candidates: int = 1
    urls: tuple[str, ...] = ()
    signatures: tuple[str, ...] = field(default=(), repr=False)
    stand_ins: tuple[tuple[str, str], ...] = field(default=(), repr=False)


def understand(family: str, model: str, serial: int, body: Any) -> Call:
    """Ratio, size, candidates, search, image counts and text size of a request body."""
    body = body if isinstance(body, dict) else {}
    texts: list[str] = []
    images = user_images = 0
    ratio: str | None = None
    image_size: str | None = None
    candidates: Any = body.get("n") or 1
    if family == "gemini":
        config = body.get("generationConfig") or body.get("generation_config") or {}
        image_config = config.get("imageConfig") or config.get("image_config") or {}
        ratio = image_config.get("aspectRatio") or image_config.get("aspect_ratio")
        image_size = image_config.get("imageSize") or image_config.get("image_size")
        candidates = config.get("candidateCount") or config.get("candidate_count") or 1
        for content in body.get("contents") or []:
            for part in content.get("parts") or []:
                if part.get("inlineData") or part.get("inline_data"):
                    images += 1
                    user_images += content.get("role") != "model"
                elif isinstance(part.get("text"), str):
                    texts.append(part["text"])
    elif family == "images":
        ratio = body.get("size")
        texts.append(str(body.get("prompt", "")))
        model = str(body.get("model", model))
    else:
        model = str(body.get("model", model))
        for message in body.get("messages") or []:
            content = message.get("content")
            texts.append(content if isinstance(content, str) else str(content or ""))
            attached = len(message.get("experimental_attachments") or [])
            images += attached
            user_images += attached if message.get("role") == "user" else 0
    return Call(
        family,
        model,
        serial,
        ratio if isinstance(ratio, str) else None,
        images,
        sum(len(text) for text in texts),
        image_size=image_size if isinstance(image_size, str) else None,
        candidates=candidates if isinstance(candidates, int) else 1,
        search=_searches(body),
        user_images=user_images,
    )


def _searches(body: dict[str, Any]) -> bool:
    tools = body.get("tools")
    return isinstance(tools, list) and any(
        isinstance(tool, dict) and ("google_search" in tool or "googleSearch" in tool)
        for tool in tools
    )


def missing_signature(body: Any, issued: set[str]) -> str | None:
    """Gemini 3's refusal of history whose image parts lost the signatures it issued."""
    contents = body.get("contents", []) if isinstance(body, dict) else []
    for content_index, content in enumerate(contents):
        if content.get("role") != "model":
            continue
        for part_index, part in enumerate(content.get("parts") or []):
            if part.get("thought") or not (part.get("inlineData") or part.get("inline_data")):
                continue
            signature = part.get("thoughtSignature") or part.get("thought_signature")
            if signature is None:
                return (
                    "Image part is missing a thought_signature in content position "
                    f"{content_index + 1}, part position {part_index + 1}."
                )
            if signature not in issued:
                return "Corrupted thought signature."
    return None


def tokens(call: Call, images_out: int) -> tuple[int, int]:
    """(prompt, output) tokens derived from the request, as the real service counts them."""
    prompt = IMAGE_INPUT_TOKENS * call.input_images + max(1, math.ceil(call.text_chars / 4))
    per_image = 1120 if call.model.startswith("gemini-3-pro") else 1290
    if call.image_size == "4K" and call.model.startswith("gemini-3-pro"):
        per_image = 2000
    return prompt, per_image * images_out


def render(outcome: Outcome, call: Call, made: Made) -> dict[str, Any]:
    """The JSON body of a 200 outcome for the endpoint family that was called."""
    from tests.fakes.gptproto_openai import chat_answer, images_answer

    if outcome.kind == "image" and call.family == "images":
        return images_answer(outcome, call, made)
    if call.family == "chat" and outcome.kind in ("image", "text"):
        shape = outcome.shape or "markdown"
        if shape != "gemini":
            return chat_answer(outcome, call, made, shape)
    return _gemini_answer(outcome, call, made)


def _gemini_answer(outcome: Outcome, call: Call, made: Made) -> dict[str, Any]:
    answer: dict[str, Any] = {"modelVersion": call.model, "responseId": f"fake-{call.serial}"}
    if outcome.kind == "prompt_blocked":
        answer["promptFeedback"] = {"blockReason": outcome.reason}
        if outcome.candidates_null:
            answer["candidates"] = None
        answer["usageMetadata"] = _usage_metadata(call, 0)
        return answer
    signatures = iter(made.signatures)
    answer["candidates"] = [
        _candidate(outcome, call, made, index, signatures) for index in range(made.candidates)
    ]
    answer["usageMetadata"] = _usage_metadata(call, len(made.images))
    return answer


def _candidate(
    outcome: Outcome, call: Call, made: Made, index: int, signatures: Iterator[str]
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"index": index}
    if outcome.kind == "output_blocked":
        candidate["finishReason"] = outcome.reason
    elif outcome.kind == "finish":
        candidate["finishReason"] = outcome.reason
        if outcome.text:
            candidate["content"] = {"role": "model", "parts": [{"text": outcome.text}]}
    else:
        candidate["finishReason"] = "STOP"
        parts = _gemini_parts(outcome, made, index, signatures)
        candidate["content"] = {"role": "model", "parts": parts}
    if call.search:
        candidate["groundingMetadata"] = grounding(call)
    return candidate


def grounding(call: Call) -> dict[str, Any]:
    """Google Search grounding as the API returns it; the pages are named after the serial."""
    pages = [
        (f"https://example.org/{call.serial}/skyline", f"Skyline {call.serial} | Example"),
        (f"https://news.example.com/{call.serial}", "news.example.com"),
        (f"https://example.org/{call.serial}/skyline", "the same page again"),
    ]
    return {
        "webSearchQueries": ["today's skyline"],
        "searchEntryPoint": {"renderedContent": "<div class='search'>Google</div>"},
        "groundingChunks": [{"web": {"uri": uri, "title": title}} for uri, title in pages],
        "groundingSupports": [{"groundingChunkIndices": [0, 1], "confidenceScores": [0.9, 0.8]}],
    }


def _gemini_parts(
    outcome: Outcome, made: Made, index: int, signatures: Iterator[str]
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if made.drafts:
        parts.append(
            {"text": "**Composing the scene**\nDrafting the layout first.", "thought": True}
        )
        for mime, data in made.drafts:
            parts.append({"inlineData": {"mimeType": mime, "data": data}, "thought": True})

    def signed(part: dict[str, Any]) -> dict[str, Any]:
        signature = next(signatures, None)
        return {**part, "thoughtSignature": signature} if signature else part

    drafts = outcome.drafts
    for mime, data in made.signed_drafts[index * drafts : (index + 1) * drafts]:
        parts.append(signed({"inlineData": {"mimeType": mime, "data": data}}))
    if outcome.text:
        parts.append(signed({"text": outcome.text}))
    count = outcome.count
    for mime, data in made.images[index * count : (index + 1) * count]:
        parts.append(signed({"inlineData": {"mimeType": mime, "data": data}}))
    return parts


def _usage_metadata(call: Call, images_out: int) -> dict[str, Any]:
    prompt, output = tokens(call, images_out)
    image_tokens = IMAGE_INPUT_TOKENS * call.input_images
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": output,
        "totalTokenCount": prompt + output,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": prompt - image_tokens},
            {"modality": "IMAGE", "tokenCount": image_tokens},
        ],
    }
