"""The gptproto fake's answers on the OpenAI-style endpoints: images/generations, chat."""

from __future__ import annotations

import time
from typing import Any

from tests.fakes.gptproto_outcomes import Outcome
from tests.fakes.gptproto_render import IMAGE_INPUT_TOKENS, Call, Made, tokens


def images_answer(outcome: Outcome, call: Call, made: Made) -> dict[str, Any]:
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


def chat_answer(outcome: Outcome, call: Call, made: Made, shape: str) -> dict[str, Any]:
    count = outcome.count
    choices = [
        {
            "index": index,
            "message": _chat_message(
                outcome, made.images[index * count : (index + 1) * count], shape
            ),
            "finish_reason": "stop",
        }
        for index in range(made.candidates)
    ]
    prompt, output = tokens(call, len(made.images))
    return {
        "id": f"chatcmpl-fake-{call.serial}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output,
        },
    }


def _chat_message(outcome: Outcome, images: tuple[tuple[str, str], ...], shape: str) -> Any:
    urls = [f"data:{mime};base64,{data}" for mime, data in images]
    message: dict[str, Any] = {"role": "assistant"}
    if shape == "images":
        message["content"] = outcome.text
        message["images"] = [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    else:
        pictures = "\n".join(f"![image]({url})" for url in urls)
        message["content"] = "\n".join(piece for piece in (outcome.text, pictures) if piece)
    return message
