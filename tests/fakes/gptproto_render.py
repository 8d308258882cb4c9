"""What the gptproto fake reads from requests, and its answers in each endpoint's real shapes."""

from __future__ import annotations

import base64
import math
import time
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


@dataclass(frozen=True)
class Made:
    """Images made for one answer: (mime, data) each, thought drafts apart, their URLs.

    `data` is a placeholder; `stand_ins` pairs each (as JSON escapes it) with the real base64.
    """

    images: tuple[tuple[str, str], ...] = ()
    raw: tuple[bytes, ...] = field(default=(), repr=False)  # the images' bytes
    drafts: tuple[tuple[str, str], ...] = ()
    urls: tuple[str, ...] = ()
    signatures: tuple[str, ...] = field(default=(), repr=False)
    stand_ins: tuple[tuple[str, str], ...] = field(default=(), repr=False)


def understand(family: str, model: str, serial: int, body: Any) -> Call:
    """Ratio, input image count and text size of a request body, for any family."""
    body = body if isinstance(body, dict) else {}
    texts: list[str] = []
    images = 0
    ratio: str | None = None
    if family == "gemini":
        config = body.get("generationConfig") or body.get("generation_config") or {}
        image_config = config.get("imageConfig") or config.get("image_config") or {}
        ratio = image_config.get("aspectRatio") or image_config.get("aspect_ratio")
        for content in body.get("contents") or []:
            for part in content.get("parts") or []:
                if part.get("inlineData") or part.get("inline_data"):
                    images += 1
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
            images += len(message.get("experimental_attachments") or [])
    chars = sum(len(text) for text in texts)
    return Call(family, model, serial, ratio if isinstance(ratio, str) else None, images, chars)


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
    return prompt, per_image * images_out


def render(outcome: Outcome, call: Call, made: Made) -> dict[str, Any]:
    """The JSON body of a 200 outcome for the endpoint family that was called."""
    if outcome.kind == "image" and call.family == "images":
        return _images_answer(outcome, call, made)
    if call.family == "chat" and outcome.kind in ("image", "text"):
        shape = outcome.shape or "markdown"
        if shape != "gemini":
            return _chat_answer(outcome, call, made, shape)
    return _gemini_answer(outcome, call, made)


def _gemini_answer(outcome: Outcome, call: Call, made: Made) -> dict[str, Any]:
    answer: dict[str, Any] = {"modelVersion": call.model, "responseId": f"fake-{call.serial}"}
    if outcome.kind == "prompt_blocked":
        answer["promptFeedback"] = {"blockReason": outcome.reason}
        if outcome.candidates_null:
            answer["candidates"] = None
        answer["usageMetadata"] = _usage_metadata(call, 0)
        return answer
    candidate: dict[str, Any] = {"index": 0}
    if outcome.kind == "output_blocked":
        candidate["finishReason"] = outcome.reason
    elif outcome.kind == "finish":
        candidate["finishReason"] = outcome.reason
        if outcome.text:
            candidate["content"] = {"role": "model", "parts": [{"text": outcome.text}]}
    else:
        candidate["finishReason"] = "STOP"
        candidate["content"] = {"role": "model", "parts": _gemini_parts(outcome, made)}
    answer["candidates"] = [candidate]
    answer["usageMetadata"] = _usage_metadata(call, len(made.images))
    return answer


def _gemini_parts(outcome: Outcome, made: Made) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    signatures = iter(made.signatures)
    if made.drafts:
        parts.append(
            {"text": "**Composing the scene**\nDrafting the layout first.", "thought": True}
        )
        for mime, data in made.drafts:
            parts.append({"inlineData": {"mimeType": mime, "data": data}, "thought": True})

    def signed(part: dict[str, Any]) -> dict[str, Any]:
        signature = next(signatures, None)
        return {**part, "thoughtSignature": signature} if signature else part

    if outcome.text:
        parts.append(signed({"text": outcome.text}))
    for mime, data in made.images:
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


def _images_answer(outcome: Outcome, call: Call, made: Made) -> dict[str, Any]:
    if outcome.shape == "url":
        items: list[dict[str, str]] = [{"url": url} for url in made.urls]
    else:
        items = [{"b64_json": data} for _, data in made.images]
    prompt, output = tokens(call, len(made.images))
    return {
        "created": int(time.time() * 1000),
        "data": items,
        "output_format": "jpeg" if outcome.mime == "image/jpeg" else "png",
        "quality": "high",
        "size": call.ratio or "1:1",
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {
                "image_tokens": IMAGE_INPUT_TOKENS * call.input_images,
                "text_tokens": prompt - IMAGE_INPUT_TOKENS * call.input_images,
            },
            "output_tokens": output,
            "total_tokens": prompt + output,
        },
    }


def _chat_answer(outcome: Outcome, call: Call, made: Made, shape: str) -> dict[str, Any]:
    urls = [f"data:{mime};base64,{data}" for mime, data in made.images]
    message: dict[str, Any] = {"role": "assistant"}
    if shape == "images":
        message["content"] = outcome.text
        message["images"] = [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    else:
        pictures = "\n".join(f"![image]({url})" for url in urls)
        message["content"] = "\n".join(piece for piece in (outcome.text, pictures) if piece)
    prompt, output = tokens(call, len(made.images))
    return {
        "id": f"chatcmpl-fake-{call.serial}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output,
        },
    }
