"""Gemini answers written out by hand, for shapes the upstream fake does not make itself:
drafts as plain signed image parts, grounding metadata with hostile titles."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.fakes.gptproto import Outcome


def image_part(data: bytes, signature: str) -> dict[str, Any]:
    """A PNG image part carrying a thought signature and no thought flag."""
    encoded = base64.b64encode(data).decode()
    return {"inlineData": {"mimeType": "image/png", "data": encoded}, "thoughtSignature": signature}


def gemini_answer(
    parts: list[dict[str, Any]], *, model: str = "gemini-3.1-flash-image", **candidate: Any
) -> Outcome:
    """A 200 generateContent answer of one candidate with these parts (and candidate fields)."""
    content = {"role": "model", "parts": parts}
    usage = {"promptTokenCount": 10, "candidatesTokenCount": 1290, "totalTokenCount": 1300}
    first = {"index": 0, "finishReason": "STOP", "content": content, **candidate}
    body = {"candidates": [first], "usageMetadata": usage, "modelVersion": model}
    return Outcome.raw(200, json.dumps(body).encode())
